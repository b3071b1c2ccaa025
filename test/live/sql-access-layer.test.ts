// The SQL access-layer suite against a real SQL Server. Skipped unless OCTOPUS_DR_LIVE_SQL holds
// an ADO.NET connection string for a sysadmin login (the suite creates and drops databases with
// hostile names, and reads server facts). How to run it with Docker: docs/testing.md, "Live SQL Server suite".
import { parseSqlConnectionString } from '../../steps/engines/sql';
import { accessLayerSuite } from '../sql/access-layer-suite';

const live = process.env.OCTOPUS_DR_LIVE_SQL;
const describeLive = live ? describe : describe.skip;

describeLive('access layer against a real SQL Server (OCTOPUS_DR_LIVE_SQL)', () => {
  const connectionString = () => `${live};Database=master`;
  const password = () => {
    const auth = parseSqlConnectionString(live!).authentication;
    return auth.kind === 'entra-service-principal' ? auth.clientSecret : auth.kind === 'integrated' ? '' : auth.password;
  };
  accessLayerSuite({ connectionString, password });
});
