/**
 * vitest globalSetup: resolves the services once per run, says loudly which backends' tests will
 * be skipped, fails the run under `CI=true` when a required backend is missing, and hands the URLs
 * to the test files (read them through `backends.ts`). It also gives the run a directory where the
 * first package test to ask packs hasp (see packed-hasp.ts), emptied when watch mode reruns.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import {
  BACKENDS,
  type BackendName,
  isCi,
  type ProvidedService,
  REQUIRED_IN_CI,
  redactUrl,
  resolveServices,
  summarizeResolution,
} from "./services.js";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const resolution = await resolveServices({ env: process.env });
  const { services } = resolution;

  for (const name of BACKENDS) {
    const service = services[name];
    if (service.status === "missing") {
      console.warn(`[hasp harness] SKIPPING ${name} tests: ${service.attempts.join("; ")}`);
    } else if (service.status === "filtered-out") {
      console.log(`[hasp harness] ${summarizeResolution(service)}`);
    } else {
      console.log(
        `[hasp harness] ${name}: using ${redactUrl(service.url ?? "")} (${service.source})`,
      );
    }
  }

  const requiredMissing = REQUIRED_IN_CI.filter((name) => services[name].status === "missing");
  if (isCi(process.env) && requiredMissing.length > 0) {
    await resolution.stop();
    throw new Error(
      `[hasp harness] CI requires ${requiredMissing.join(", ")}, which could not be reached:\n` +
        requiredMissing.map((name) => `  ${summarizeResolution(services[name])}`).join("\n") +
        "\nStart the services, set the *_URL variables, or narrow HASP_BACKENDS.",
    );
  }

  project.provide(
    "haspServices",
    Object.fromEntries(
      BACKENDS.map((name) => [
        name,
        {
          url: services[name].url ?? null,
          status: services[name].status,
          summary: summarizeResolution(services[name]),
        },
      ]),
    ) as Record<BackendName, ProvidedService>,
  );

  const packDirectory = await mkdtemp(join(tmpdir(), "hasp-packed-"));
  project.provide("haspPackDirectory", packDirectory);
  // A rerun packs the sources as they are now.
  project.onTestsRerun(async () => {
    await rm(packDirectory, { recursive: true, force: true });
    await mkdir(packDirectory);
  });

  return async () => {
    await rm(packDirectory, { recursive: true, force: true });
    await resolution.stop();
  };
}
