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
$queued = New-Object System.Collections.Queue
$script:lineTask = $null
$script:endOfInput = $false

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

# Next request line, without blocking; $null when none is waiting (or stdin is closed).
function Receive-Pending {
  if ($script:endOfInput) { return $null }
  if ($null -eq $script:lineTask) { $script:lineTask = $stdin.ReadLineAsync() }
  if (-not $script:lineTask.IsCompleted) { return $null }
  $line = $script:lineTask.GetAwaiter().GetResult()
  $script:lineTask = $null
  if ($null -eq $line) { $script:endOfInput = $true; return $null }
  return $line
}

# Next request line, waiting for it; $null at end of input.
function Receive-Request {
  if ($queued.Count -gt 0) { return $queued.Dequeue() }
  if ($script:endOfInput) { return $null }
  if ($null -eq $script:lineTask) { $script:lineTask = $stdin.ReadLineAsync() }
  $line = $script:lineTask.GetAwaiter().GetResult()
  $script:lineTask = $null
  if ($null -eq $line) { $script:endOfInput = $true }
  return $line
}

# Info messages (and, with FireInfoMessageEventOnUserErrors, errors up to severity 16) arrive as
# engine events from SqlClient's threads; they are forwarded here, on the script's own thread.
function Send-Events($run) {
  foreach ($queuedEvent in @(Get-Event -SourceIdentifier $run.infoSource -ErrorAction SilentlyContinue)) {
    foreach ($e in $queuedEvent.SourceEventArgs.Errors) {
      if ($e.Class -gt 10) { $run.errors.Add($e) }
      else {
        Send ('{"id":' + $run.id + ',"t":"info","number":' + $e.Number + ',"class":' + $e.Class + ',"state":' + $e.State + ',"message":' + (ConvertTo-JsonText $e.Message) + '}')
      }
    }
    Remove-Event -EventIdentifier $queuedEvent.EventIdentifier
  }
  foreach ($queuedEvent in @(Get-Event -SourceIdentifier $run.countSource -ErrorAction SilentlyContinue)) {
    Send ('{"id":' + $run.id + ',"t":"count","n":' + $queuedEvent.SourceEventArgs.RecordCount + '}')
    Remove-Event -EventIdentifier $queuedEvent.EventIdentifier
  }
}

# Waits for a SqlClient task while forwarding messages and watching stdin for a cancel.
function Wait-SqlTask($task, $run) {
  while (-not $task.IsCompleted) {
    [void][System.Threading.Tasks.Task]::WaitAny([System.Threading.Tasks.Task[]]@($task), 20)
    Send-Events $run
    $line = Receive-Pending
    if ($null -ne $line) {
      $request = ConvertFrom-Json $line
      if ($request.op -eq 'cancel' -and $request.id -eq $run.id) { $run.cancelled = $true; $run.command.Cancel() }
      elseif ($request.op -ne 'cancel') { $queued.Enqueue($line) }
    }
    elseif ($script:endOfInput -and -not $run.cancelled) { $run.cancelled = $true; $run.command.Cancel() }
  }
  Send-Events $run
  # The comma keeps PowerShell from enumerating a data reader into its records.
  return , $task.GetAwaiter().GetResult()
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
  # Errors up to severity 16 become events too, so PRINT/RAISERROR ... WITH NOWAIT and STATS
  # progress stream while the statement runs instead of arriving at its end.
  $connection.FireInfoMessageEventOnUserErrors = $true
  $source = 'odr-info-' + $request.session
  Register-ObjectEvent -InputObject $connection -EventName InfoMessage -SourceIdentifier $source | Out-Null
  try {
    $connection.Open()
  } catch {
    Unregister-Event -SourceIdentifier $source
    Get-Event -SourceIdentifier $source -ErrorAction SilentlyContinue | Remove-Event
    $connection.Dispose()
    throw
  }
  $sessions[[string]$request.session] = @{ connection = $connection; infoSource = $source }
  Send ('{"id":' + $request.id + ',"t":"opened","serverVersion":' + (ConvertTo-JsonText $connection.ServerVersion) + '}')
}

function Close-Session($key) {
  $session = $sessions[$key]
  if ($null -eq $session) { return }
  $sessions.Remove($key)
  Unregister-Event -SourceIdentifier $session.infoSource -ErrorAction SilentlyContinue
  Get-Event -SourceIdentifier $session.infoSource -ErrorAction SilentlyContinue | Remove-Event
  $session.connection.Dispose()
}

function Invoke-Statement($request) {
  $session = $sessions[[string]$request.session]
  if ($null -eq $session) { throw 'The session is not open.' }
  $command = $session.connection.CreateCommand()
  $command.CommandText = From-Base64 $request.sql
  $command.CommandTimeout = 0 # the access layer runs its own watchdog and cancels
  foreach ($p in @($request.params)) { if ($null -ne $p) { New-SqlParameter $command $p } }
  $countSource = 'odr-count-' + $request.id
  Register-ObjectEvent -InputObject $command -EventName StatementCompleted -SourceIdentifier $countSource | Out-Null
  $run = @{ id = $request.id; command = $command; infoSource = $session.infoSource; countSource = $countSource; cancelled = $false
    errors = New-Object System.Collections.Generic.List[object] }
  $reader = $null
  try {
    try {
      $reader = Wait-SqlTask $command.ExecuteReaderAsync() $run
      do {
        if ($reader.FieldCount -gt 0) {
          $names = New-Object System.Collections.Generic.List[string]
          for ($i = 0; $i -lt $reader.FieldCount; $i++) { $names.Add((ConvertTo-JsonText $reader.GetName($i))) }
          Send ('{"id":' + $run.id + ',"t":"columns","names":[' + ($names -join ',') + ']}')
          $values = New-Object object[] $reader.FieldCount
          while (Wait-SqlTask $reader.ReadAsync() $run) {
            [void]$reader.GetValues($values)
            $cells = New-Object System.Collections.Generic.List[string]
            foreach ($v in $values) { $cells.Add((ConvertTo-ValueJson $v)) }
            Send ('{"id":' + $run.id + ',"t":"row","values":[' + ($cells -join ',') + ']}')
          }
        }
      } while (Wait-SqlTask $reader.NextResultAsync() $run)
      $reader.Dispose()
      $reader = $null
      Send-Events $run
    } catch {
      Send-Events $run
      $failure = $_.Exception
      while ($null -ne $failure.InnerException -and -not ($failure -is [System.Data.SqlClient.SqlException])) { $failure = $failure.InnerException }
      if ($failure -is [System.Data.SqlClient.SqlException]) { foreach ($e in $failure.Errors) { if (-not $run.cancelled -or $e.Number -ne 0) { $run.errors.Add($e) } } }
      $open = $session.connection.State -eq [System.Data.ConnectionState]::Open
      if ($run.cancelled) {
        Send ('{"id":' + $run.id + ',"t":"error","cancelled":true,"open":' + $open.ToString().ToLowerInvariant() + ',"messages":[],"text":' + (ConvertTo-JsonText $failure.Message) + '}')
      } else {
        Send ('{"id":' + $run.id + ',"t":"error","cancelled":false,"open":' + $open.ToString().ToLowerInvariant() + ',"messages":' + (ConvertTo-MessagesJson $run.errors) + ',"text":' + (ConvertTo-JsonText $failure.Message) + '}')
      }
      if (-not $open) { Close-Session ([string]$request.session) }
      return
    }
    if ($run.errors.Count -gt 0) {
      Send ('{"id":' + $run.id + ',"t":"error","cancelled":false,"open":true,"messages":' + (ConvertTo-MessagesJson $run.errors) + ',"text":' + (ConvertTo-JsonText $run.errors[$run.errors.Count - 1].Message) + '}')
    } elseif ($run.cancelled) {
      Send ('{"id":' + $run.id + ',"t":"error","cancelled":true,"open":true,"messages":[],"text":"Operation cancelled by user."}')
    } else {
      Send ('{"id":' + $run.id + ',"t":"done"}')
    }
  } finally {
    if ($null -ne $reader) { $reader.Dispose() }
    Unregister-Event -SourceIdentifier $countSource -ErrorAction SilentlyContinue
    Get-Event -SourceIdentifier $countSource -ErrorAction SilentlyContinue | Remove-Event
    $command.Dispose()
  }
}

while ($true) {
  $line = Receive-Request
  if ($null -eq $line) { break }
  if ($line.Trim().Length -eq 0) { continue }
  $request = ConvertFrom-Json $line
  try {
    switch ($request.op) {
      'open' { Open-Session $request }
      'run' { Invoke-Statement $request }
      'close' { Close-Session ([string]$request.session); Send ('{"id":' + $request.id + ',"t":"closed"}') }
      'cancel' { } # the statement already finished
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
