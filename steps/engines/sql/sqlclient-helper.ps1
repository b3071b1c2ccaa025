# octopus-dr SqlClient helper: serves the SQL access layer over stdin/stdout with .NET's
# System.Data.SqlClient, so a step can sign in with the worker's own Windows identity
# (Integrated Security). One JSON object per line each way; the connection string arrives on
# stdin only and is never printed. Windows PowerShell 5.1 and PowerShell 7 alike: keep it free of
# 7-only syntax (checked by test/sql/sqlclient-helper.test.ts).
#
# Requests:  {"op":"open","id":1,"session":1,"cs":"<base64>","database":"<base64>","app":"<base64>","encrypt":true,"trust":false}
#            {"op":"run","id":2,"session":1,"sql":"<base64>","params":[{"name":"db","type":"nvarchar","length":128,"value":"<base64>"|null}]}
#            {"op":"cancel","id":2}   {"op":"close","id":3,"session":1}
# Replies:   {"id":n,"t":"opened"|"closed"|"done"|"info"|"columns"|"row"|"count"|"error", ...}
# Values in rows: null, numbers, booleans, or "<tag><text>": S string (base64 UTF-8), B binary
# (base64), I bigint, D decimal, T datetime (yyyy-MM-ddTHH:mm:ss.fffffff), O datetimeoffset, G guid.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 2

$invariant = [System.Globalization.CultureInfo]::InvariantCulture
$utf8 = New-Object System.Text.UTF8Encoding $false
$stdin = New-Object System.IO.StreamReader ([Console]::OpenStandardInput()), $utf8
$stdout = New-Object System.IO.StreamWriter ([Console]::OpenStandardOutput()), $utf8
$stdout.NewLine = "`n"
$sessions = @{}

# Requests are read on a second runspace (a thread of its own), so a cancel reaches the running
# command while this thread is blocked in it. SqlCommand.Cancel() is made for exactly that: called
# from another thread during a synchronous execute. (Cancel during ExecuteReaderAsync is not
# reliable while messages stream, so statements run synchronously on this thread.)
$requests = New-Object 'System.Collections.Concurrent.BlockingCollection[string]'
$shared = [hashtable]::Synchronized(@{ command = $null; runId = ''; cancelId = ''; finished = $true })
$readerShell = [PowerShell]::Create()
[void]$readerShell.AddScript({
  param($stdin, $requests, $shared)
  function Stop-Run([string]$id) {
    # Retried until the run is over: a Cancel() that lands just before the execute starts is a no-op.
    for ($try = 0; $try -lt 100; $try++) {
      $command = $shared.command
      if ($shared.finished -or $shared.runId -ne $id -or $null -eq $command) { return }
      try { $command.Cancel() } catch { }
      Start-Sleep -Milliseconds 200
    }
  }
  while ($true) {
    $line = $stdin.ReadLine()
    if ($null -eq $line) {
      # Node has gone (the step ended or was killed): stop what runs, then let the main loop end.
      $shared.cancelId = $shared.runId
      $requests.CompleteAdding()
      Stop-Run $shared.runId
      return
    }
    if ($line -match '^\{"op":"cancel","id":(\d+)\}$') {
      $shared.cancelId = $Matches[1]
      Stop-Run $Matches[1]
      continue
    }
    $requests.Add($line)
  }
}).AddArgument($stdin).AddArgument($requests).AddArgument($shared)
$readerHandle = $readerShell.BeginInvoke()

function ConvertTo-JsonText([string]$text) {
  if ($null -eq $text) { return 'null' }
  $sb = New-Object System.Text.StringBuilder ($text.Length + 2)
  [void]$sb.Append('"')
  foreach ($ch in $text.ToCharArray()) {
    $code = [int]$ch
    if ($code -eq 34) { [void]$sb.Append('\"') }
    elseif ($code -eq 92) { [void]$sb.Append('\\') }
    elseif ($code -lt 32) { [void]$sb.Append('\u').Append($code.ToString('x4')) }
    else { [void]$sb.Append($ch) }
  }
  [void]$sb.Append('"')
  return $sb.ToString()
}

function Send([string]$json) {
  $stdout.WriteLine($json)
  $stdout.Flush()
}

function From-Base64($text) {
  # Untyped on purpose: a [string] parameter would turn $null into ''.
  if ($null -eq $text) { return $null }
  return $utf8.GetString([Convert]::FromBase64String($text))
}

function ConvertTo-MessagesJson($errors) {
  $items = New-Object System.Collections.Generic.List[string]
  foreach ($e in $errors) {
    $items.Add('{"number":' + $e.Number + ',"class":' + $e.Class + ',"state":' + $e.State + ',"lineNumber":' + $e.LineNumber +
      ',"procName":' + (ConvertTo-JsonText $e.Procedure) + ',"message":' + (ConvertTo-JsonText $e.Message) + '}')
  }
  return '[' + ($items -join ',') + ']'
}

function New-SqlParameter($command, $p) {
  $parameter = $command.CreateParameter()
  $parameter.ParameterName = '@' + $p.name
  $text = From-Base64 $p.value
  $value = [DBNull]::Value
  switch ($p.type) {
    'nvarchar' {
      $parameter.SqlDbType = [System.Data.SqlDbType]::NVarChar
      if ($p.length) { $parameter.Size = [int]$p.length } else { $parameter.Size = -1 }
      if ($null -ne $text) { $value = $text }
    }
    'varchar' {
      $parameter.SqlDbType = [System.Data.SqlDbType]::VarChar
      if ($p.length) { $parameter.Size = [int]$p.length } else { $parameter.Size = -1 }
      if ($null -ne $text) { $value = $text }
    }
    'int' {
      $parameter.SqlDbType = [System.Data.SqlDbType]::Int
      if ($null -ne $text) { $value = [int]::Parse($text, $invariant) }
    }
    'bigint' {
      $parameter.SqlDbType = [System.Data.SqlDbType]::BigInt
      if ($null -ne $text) { $value = [long]::Parse($text, $invariant) }
    }
    'bit' {
      $parameter.SqlDbType = [System.Data.SqlDbType]::Bit
      if ($null -ne $text) { $value = ($text -eq '1') }
    }
    'varbinary' {
      $parameter.SqlDbType = [System.Data.SqlDbType]::VarBinary
      if ($p.length) { $parameter.Size = [int]$p.length } else { $parameter.Size = -1 }
      if ($null -ne $p.value) { $value = [Convert]::FromBase64String($p.value) }
    }
    'datetime' {
      $parameter.SqlDbType = [System.Data.SqlDbType]::DateTime
      if ($null -ne $text) { $value = [DateTime]::ParseExact($text, 'yyyy-MM-ddTHH:mm:ss.fffffff', $invariant) }
    }
    'datetime2' {
      $parameter.SqlDbType = [System.Data.SqlDbType]::DateTime2
      $parameter.Scale = [byte]$p.scale
      if ($null -ne $text) { $value = [DateTime]::ParseExact($text, 'yyyy-MM-ddTHH:mm:ss.fffffff', $invariant) }
    }
    'decimal' {
      $parameter.SqlDbType = [System.Data.SqlDbType]::Decimal
      $parameter.Precision = [byte]$p.precision
      $parameter.Scale = [byte]$p.scale
      if ($null -ne $text) { $value = [decimal]::Parse($text, [System.Globalization.NumberStyles]::Float, $invariant) }
    }
    default { throw "Unsupported parameter type '$($p.type)'." }
  }
  $parameter.Value = $value
  [void]$command.Parameters.Add($parameter)
}

function ConvertTo-ValueJson($value) {
  if ($null -eq $value -or $value -is [DBNull]) { return 'null' }
  if ($value -is [string]) { return '"S' + [Convert]::ToBase64String($utf8.GetBytes($value)) + '"' }
  if ($value -is [int] -or $value -is [int16] -or $value -is [byte]) { return $value.ToString($invariant) }
  if ($value -is [bool]) { if ($value) { return 'true' } else { return 'false' } }
  if ($value -is [long]) { return '"I' + $value.ToString($invariant) + '"' }
  if ($value -is [decimal]) { return '"D' + $value.ToString($invariant) + '"' }
  if ($value -is [double] -or $value -is [single]) { return $value.ToString('R', $invariant) }
  if ($value -is [DateTime]) { return '"T' + $value.ToString('yyyy-MM-ddTHH:mm:ss.fffffff', $invariant) + '"' }
  if ($value -is [DateTimeOffset]) { return '"O' + $value.ToString('o', $invariant) + '"' }
  if ($value -is [TimeSpan]) { return '"T1970-01-01T' + $value.ToString('hh\:mm\:ss\.fffffff', $invariant) + '"' }
  if ($value -is [byte[]]) { return '"B' + [Convert]::ToBase64String($value) + '"' }
  if ($value -is [Guid]) { return '"G' + $value.ToString().ToUpperInvariant() + '"' }
  return '"S' + [Convert]::ToBase64String($utf8.GetBytes([string]$value)) + '"'
}

function Open-Session($request) {
  $builder = New-Object System.Data.SqlClient.SqlConnectionStringBuilder (From-Base64 $request.cs)
  # The builder is a dictionary to PowerShell: `.Name = ` would add a key, so call the setters.
  $builder.set_InitialCatalog((From-Base64 $request.database))
  $builder.set_ApplicationName((From-Base64 $request.app))
  $builder.set_Encrypt([bool]$request.encrypt)
  $builder.set_TrustServerCertificate([bool]$request.trust)
  $connection = New-Object System.Data.SqlClient.SqlConnection ($builder.get_ConnectionString())
  $builder.Clear()
  # Errors up to severity 16 arrive as InfoMessage events too, so PRINT/RAISERROR ... WITH NOWAIT
  # and STATS progress stream while the statement runs instead of arriving at its end. The events
  # fire on this thread, inside the synchronous execute.
  $connection.FireInfoMessageEventOnUserErrors = $true
  $connection.add_InfoMessage({
    param($origin, $details)
    $run = $script:currentRun
    foreach ($m in $details.Errors) {
      if ($m.Class -gt 10) { if ($null -ne $run) { $run.errors.Add($m) } }
      elseif ($null -ne $run) {
        Send ('{"id":' + $run.id + ',"t":"info","number":' + $m.Number + ',"class":' + $m.Class + ',"state":' + $m.State + ',"message":' + (ConvertTo-JsonText $m.Message) + '}')
      }
    }
  })
  try {
    $connection.Open()
  } catch {
    $connection.Dispose()
    throw
  }
  $sessions[[string]$request.session] = $connection
  Send ('{"id":' + $request.id + ',"t":"opened","serverVersion":' + (ConvertTo-JsonText $connection.ServerVersion) + '}')
}

function Close-Session($key) {
  $connection = $sessions[$key]
  if ($null -eq $connection) { return }
  $sessions.Remove($key)
  $connection.Dispose()
}

function Send-Failure($run, $failure, [bool]$open) {
  $state = $open.ToString().ToLowerInvariant()
  if ($run.cancelled) {
    Send ('{"id":' + $run.id + ',"t":"error","cancelled":true,"open":' + $state + ',"messages":[],"text":' + (ConvertTo-JsonText $failure) + '}')
  } else {
    Send ('{"id":' + $run.id + ',"t":"error","cancelled":false,"open":' + $state + ',"messages":' + (ConvertTo-MessagesJson $run.errors) + ',"text":' + (ConvertTo-JsonText $failure) + '}')
  }
}

function Invoke-Statement($request) {
  $connection = $sessions[[string]$request.session]
  if ($null -eq $connection) { throw 'The session is not open.' }
  $command = $connection.CreateCommand()
  $command.CommandText = From-Base64 $request.sql
  $command.CommandTimeout = 0 # the access layer runs its own watchdog and cancels
  foreach ($p in @($request.params)) { if ($null -ne $p) { New-SqlParameter $command $p } }
  $run = @{ id = [string]$request.id; cancelled = $false; errors = New-Object System.Collections.Generic.List[object] }
  $command.add_StatementCompleted({ param($origin, $details) Send ('{"id":' + $script:currentRun.id + ',"t":"count","n":' + $details.RecordCount + '}') })
  $script:currentRun = $run
  $shared.command = $command
  $shared.runId = $run.id
  $shared.finished = $false
  $reader = $null
  try {
    if ($shared.cancelId -eq $run.id) { $run.cancelled = $true; Send-Failure $run 'Cancelled before it started.' $true; return }
    try {
      $reader = $command.ExecuteReader()
      do {
        if ($reader.FieldCount -gt 0) {
          $names = New-Object System.Collections.Generic.List[string]
          for ($i = 0; $i -lt $reader.FieldCount; $i++) { $names.Add((ConvertTo-JsonText $reader.GetName($i))) }
          Send ('{"id":' + $run.id + ',"t":"columns","names":[' + ($names -join ',') + ']}')
          $values = New-Object object[] $reader.FieldCount
          while ($reader.Read()) {
            [void]$reader.GetValues($values)
            $cells = New-Object System.Collections.Generic.List[string]
            foreach ($v in $values) { $cells.Add((ConvertTo-ValueJson $v)) }
            Send ('{"id":' + $run.id + ',"t":"row","values":[' + ($cells -join ',') + ']}')
          }
        }
      } while ($reader.NextResult())
      $reader.Dispose()
      $reader = $null
    } catch {
      $failure = $_.Exception
      while ($null -ne $failure.InnerException -and -not ($failure -is [System.Data.SqlClient.SqlException])) { $failure = $failure.InnerException }
      $run.cancelled = ($shared.cancelId -eq $run.id)
      if ($failure -is [System.Data.SqlClient.SqlException]) { foreach ($e in $failure.Errors) { if (-not $run.cancelled -or $e.Number -ne 0) { $run.errors.Add($e) } } }
      $open = $connection.State -eq [System.Data.ConnectionState]::Open
      Send-Failure $run $failure.Message $open
      if (-not $open) { Close-Session ([string]$request.session) }
      return
    }
    if ($run.errors.Count -gt 0) {
      Send ('{"id":' + $run.id + ',"t":"error","cancelled":false,"open":true,"messages":' + (ConvertTo-MessagesJson $run.errors) + ',"text":' + (ConvertTo-JsonText $run.errors[$run.errors.Count - 1].Message) + '}')
    } else {
      # Also when a cancel came too late to stop it: the statement completed.
      Send ('{"id":' + $run.id + ',"t":"done"}')
    }
  } finally {
    $shared.finished = $true
    $shared.command = $null
    $script:currentRun = $null
    if ($null -ne $reader) { $reader.Dispose() }
    $command.Dispose()
  }
}

$script:currentRun = $null
foreach ($line in $requests.GetConsumingEnumerable()) {
  if ($line.Trim().Length -eq 0) { continue }
  $request = ConvertFrom-Json $line
  try {
    switch ($request.op) {
      'open' { Open-Session $request }
      'run' { Invoke-Statement $request }
      'close' { Close-Session ([string]$request.session); Send ('{"id":' + $request.id + ',"t":"closed"}') }
      default { throw "Unknown request '$($request.op)'." }
    }
  } catch {
    $failure = $_.Exception
    while ($null -ne $failure.InnerException -and -not ($failure -is [System.Data.SqlClient.SqlException])) { $failure = $failure.InnerException }
    $messages = '[]'
    if ($failure -is [System.Data.SqlClient.SqlException]) { $messages = ConvertTo-MessagesJson $failure.Errors }
    Send ('{"id":' + $request.id + ',"t":"error","cancelled":false,"open":false,"kind":' + (ConvertTo-JsonText $failure.GetType().Name) + ',"messages":' + $messages + ',"text":' + (ConvertTo-JsonText $failure.Message) + '}')
  }
}
foreach ($key in @($sessions.Keys)) { Close-Session $key }
$readerShell.Dispose()
