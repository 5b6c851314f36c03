// KyselyLockAdapter on SQLite: see kysely-configurations.ts.
import { describeKyselyConfigurations } from "./kysely-configurations.js";

describeKyselyConfigurations((configuration) => configuration.backend === undefined);
