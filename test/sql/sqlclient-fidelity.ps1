# Probes the SQL Server simulator with .NET System.Data.SqlClient directly (no octopus-dr code):
# the behaviours SqlClient depends on and tedious does not show. Prints one JSON object.
# The connection string comes from $env:ODR_FIDELITY_CS; the backup folder from $env:ODR_FIDELITY_DIR.
$ErrorActionPreference = 'Stop'
$cs = $env:ODR_FIDELITY_CS
$result = [ordered]@{}
function Open-Connection([string]$connectionString) {
  $c = New-Object System.Data.SqlClient.SqlConnection $connectionString
  $c.Open()
  return $c
}
function Invoke-NonQuery($c, [string]$sql) {
  $cmd = $c.CreateCommand(); $cmd.CommandText = $sql
  return $cmd.ExecuteNonQuery()
}
function Get-ErrorNumber([scriptblock]$block) {
  try { & $block; return $null } catch {
    $e = $_.Exception
    while ($null -ne $e.InnerException -and -not ($e -is [System.Data.SqlClient.SqlException])) { $e = $e.InnerException }
    if ($e -is [System.Data.SqlClient.SqlException]) { return $e.Number }
    return $e.GetType().Name
  }
}

$c = Open-Connection $cs
# Rows affected: the DONE token's count is only counted for INSERT/UPDATE/DELETE (CurCmd).
$result.insert = Invoke-NonQuery $c "INSERT INTO Octopus.dbo.Thing (Id, Name) VALUES (N'a', N'x'), (N'b', N'y')"
$result.update = Invoke-NonQuery $c "UPDATE Octopus.dbo.Thing SET Name = N'z' WHERE Id = N'a'"
$result.delete = Invoke-NonQuery $c "DELETE FROM Octopus.dbo.Thing WHERE Id IN (N'a', N'b')"
$cmd = $c.CreateCommand(); $cmd.CommandText = 'UPDATE Octopus.dbo.Thing SET Name = @n WHERE Id = @id'
[void]$cmd.Parameters.AddWithValue('@n', 'p'); [void]$cmd.Parameters.AddWithValue('@id', 'Things-1')
$result.updateRpc = $cmd.ExecuteNonQuery()

# datetime2(7): 100 ns precision survives a round trip.
$cmd = $c.CreateCommand(); $cmd.CommandText = 'SELECT @d AS d'
$p = $cmd.Parameters.Add('@d', [System.Data.SqlDbType]::DateTime2); $p.Scale = 7
$p.Value = New-Object DateTime 638699184001234567
$result.datetime2Ticks = ([DateTime]$cmd.ExecuteScalar()).Ticks.ToString()

# OUTPUT parameters come back (RETURNVALUE).
$cmd = $c.CreateCommand(); $cmd.CommandText = 'SET @out = @in * 2; SET @text = N''twice '' + CAST(@in AS nvarchar(10));'
[void]$cmd.Parameters.AddWithValue('@in', 21)
$o = $cmd.Parameters.Add('@out', [System.Data.SqlDbType]::Int); $o.Direction = [System.Data.ParameterDirection]::Output
$t = $cmd.Parameters.Add('@text', [System.Data.SqlDbType]::NVarChar, 50); $t.Direction = [System.Data.ParameterDirection]::Output
[void]$cmd.ExecuteNonQuery()
$result.output = $o.Value
$result.outputText = $t.Value

# RAISERROR with format arguments, delivered as an info message.
$script:infos = New-Object System.Collections.Generic.List[string]
$c.add_InfoMessage({ param($sender, $e) foreach ($er in $e.Errors) { $script:infos.Add($er.Message) } })
[void](Invoke-NonQuery $c "RAISERROR(N'%d percent processed (%s, %5.2s|%-4d|%04d|%%).', 0, 1, 42, N'step', N'abc', 7, -5) WITH NOWAIT")
$result.raiserror = $script:infos[0]

# BACKUP DATABASE with a bracketed and a bare name.
$dir = $env:ODR_FIDELITY_DIR
[void](Invoke-NonQuery $c "BACKUP DATABASE [Octopus] TO DISK = N'$dir/bracketed.bak' WITH INIT")
[void](Invoke-NonQuery $c "BACKUP DATABASE Octopus TO DISK = N'$dir/bare.bak' WITH INIT")
$result.backups = @((Get-ChildItem -LiteralPath $dir -Filter *.bak | Sort-Object Name | ForEach-Object { $_.Name }))

# Transactions are refused with an error, and the connection stays usable.
$result.beginTransactionApi = Get-ErrorNumber { $tx = $c.BeginTransaction(); $tx.Dispose() }
$result.beginTransactionText = Get-ErrorNumber { Invoke-NonQuery $c 'BEGIN TRANSACTION' }
$cmd = $c.CreateCommand(); $cmd.CommandText = 'SELECT 1'
$result.usableAfterTransaction = $cmd.ExecuteScalar()
$c.Close()

# A pooled connection is reset when it is handed out again: USE is undone.
$pooled = $cs + ';Pooling=True;Application Name=odr-fidelity-pool'
$p1 = Open-Connection $pooled
[void](Invoke-NonQuery $p1 'USE Octopus')
$cmd = $p1.CreateCommand(); $cmd.CommandText = 'SELECT DB_NAME()'
$result.beforeReset = $cmd.ExecuteScalar()
$p1.Close()
$p2 = Open-Connection $pooled
$cmd = $p2.CreateCommand(); $cmd.CommandText = 'SELECT DB_NAME()'
$result.afterReset = $cmd.ExecuteScalar()
$p2.Close()

$result | ConvertTo-Json -Compress
