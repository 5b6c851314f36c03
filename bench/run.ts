// `npm run bench` entry point. The benchmark harness (acquire/release cycles per adapter beside
// the raw driver baselines and peer libraries) arrives with the adapters; until then this says so
// instead of pretending to measure.
console.log("hasp bench: no subjects yet (the lock adapters are not built). Nothing measured.");
