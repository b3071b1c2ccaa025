// Jest project "sqlclient": the database, master-key and test-restore suites a second time, with
// every SQL statement going through .NET SqlClient (the PowerShell helper) instead of tedious.
process.env.OCTOPUSDR_SQL_TRANSPORT = 'sqlclient';
