// KyselyLockAdapter on PostgreSQL: see kysely-configurations.ts.
import { describeKyselyConfigurations } from "./kysely-configurations.js";

describeKyselyConfigurations((configuration) => configuration.backend === "postgres");
