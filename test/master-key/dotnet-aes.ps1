# The .NET side of the AES cross-check: System.Security.Cryptography.Aes configured as Octopus
# configures it (CBC, PKCS7, KeySize 128 then Key = the master key bytes, a fresh IV per value),
# strings as UTF-8, stored as base64(ciphertext)|base64(iv).
# Input JSON (path in $args[0]): { keys: {name: base64}, plaintexts: {name: base64 of UTF-8},
#   nodeValues: [{ key, plaintext, encrypted }] }. Output JSON (path in $args[1]):
#   { decrypted: [base64 | "error: ..."], encrypted: [{ key, plaintext, encrypted }], pfx: base64 }
param([string]$InputPath, [string]$OutputPath)
$ErrorActionPreference = 'Stop'
$in = Get-Content -Raw -LiteralPath $InputPath | ConvertFrom-Json

function New-OctopusAes([byte[]]$key) {
  $aes = [System.Security.Cryptography.Aes]::Create()
  $aes.Mode = [System.Security.Cryptography.CipherMode]::CBC
  $aes.Padding = [System.Security.Cryptography.PaddingMode]::PKCS7
  $aes.BlockSize = 128
  $aes.KeySize = 128
  $aes.Key = $key   # the setter resizes KeySize to the key's length (so 32 bytes is AES-256)
  return $aes
}

$decrypted = @()
foreach ($v in $in.nodeValues) {
  $parts = $v.encrypted.Split('|')
  $aes = New-OctopusAes ([Convert]::FromBase64String($in.keys.($v.key)))
  $aes.IV = [Convert]::FromBase64String($parts[1])
  try {
    $cipher = [Convert]::FromBase64String($parts[0])
    $plain = $aes.CreateDecryptor().TransformFinalBlock($cipher, 0, $cipher.Length)
    $text = [System.Text.Encoding]::UTF8.GetString($plain)
    $decrypted += [Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes($text))
  } catch {
    $decrypted += "error: $($_.Exception.GetType().Name)"
  }
  $aes.Dispose()
}

$encrypted = @()
foreach ($keyName in $in.keys.PSObject.Properties.Name) {
  foreach ($plainName in $in.plaintexts.PSObject.Properties.Name) {
    $text = [System.Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($in.plaintexts.$plainName))
    $aes = New-OctopusAes ([Convert]::FromBase64String($in.keys.$keyName))
    $aes.GenerateIV()
    $bytes = [System.Text.Encoding]::UTF8.GetBytes($text)
    $cipher = $aes.CreateEncryptor().TransformFinalBlock($bytes, 0, $bytes.Length)
    $encrypted += [pscustomobject]@{ key = $keyName; plaintext = $plainName; keyBits = $aes.KeySize; encrypted = [Convert]::ToBase64String($cipher) + '|' + [Convert]::ToBase64String($aes.IV) }
    $aes.Dispose()
  }
}

# A server-certificate-like PFX made by .NET, as Octopus (a .NET program) would export it.
$rsa = [System.Security.Cryptography.RSA]::Create(2048)
$request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new('CN=Octopus Portal', $rsa, [System.Security.Cryptography.HashAlgorithmName]::SHA256, [System.Security.Cryptography.RSASignaturePadding]::Pkcs1)
$cert = $request.CreateSelfSigned([DateTimeOffset]::UtcNow.AddDays(-1), [DateTimeOffset]::UtcNow.AddDays(2))
$pfx = $cert.Export([System.Security.Cryptography.X509Certificates.X509ContentType]::Pfx)

[pscustomobject]@{ decrypted = $decrypted; encrypted = $encrypted; pfx = [Convert]::ToBase64String($pfx) } |
  ConvertTo-Json -Depth 5 -Compress | Set-Content -LiteralPath $OutputPath -Encoding utf8NoBOM
