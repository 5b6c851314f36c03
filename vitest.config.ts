import { defineConfig } from "vitest/config";
import { isCi } from "./tests/harness/services.js";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts", "src/**/*.test.ts"],
    // Resolves Redis, PostgreSQL, MariaDB/MySQL and MongoDB once per run (see tests/harness/).
    globalSetup: ["tests/harness/global-setup.ts"],
    // A forgotten test.only must fail CI rather than silently skip the rest.
    allowOnly: !isCi(process.env),
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: "forks",
    reporters: ["default", "./tests/harness/summary-reporter.ts"],
  },
});
