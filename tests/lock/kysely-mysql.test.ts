// KyselyLockAdapter on the MySQL statements (no RETURNING), on MariaDB: see kysely-configurations.ts.
import { describeKyselyConfigurations } from "./kysely-configurations.js";

describeKyselyConfigurations((configuration) => configuration.name.startsWith("MySQL statements"));
