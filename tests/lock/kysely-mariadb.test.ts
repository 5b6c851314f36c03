// KyselyLockAdapter on MariaDB with its RETURNING statements: see kysely-configurations.ts.
import { describeKyselyConfigurations } from "./kysely-configurations.js";

describeKyselyConfigurations((configuration) => configuration.name.startsWith("MariaDB"));
