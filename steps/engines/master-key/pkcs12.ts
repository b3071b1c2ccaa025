// The shape of a PKCS#12 (PFX) blob, checked without parsing or keeping the certificate:
//   PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, macData MacData OPTIONAL }
//   ContentInfo ::= SEQUENCE { contentType OBJECT IDENTIFIER (pkcs7-data or pkcs7-signedData), ... }
// A wrong key cannot produce this by chance; the server certificate decrypts to it (Issues#3563
// proposed parsing the certificate for exactly this reason).

const PKCS7_DATA = Buffer.from('06092a864886f70d010701', 'hex');
const PKCS7_SIGNED_DATA = Buffer.from('06092a864886f70d010702', 'hex');

interface Header {
  /** Offset of the content. */
  contentStart: number;
  /** Content length, or undefined for BER indefinite length. */
  length: number | undefined;
}

function readHeader(bytes: Buffer, offset: number, tag: number): Header | undefined {
  if (bytes[offset] !== tag || offset + 2 > bytes.length) return undefined;
  const first = bytes[offset + 1];
  if (first < 0x80) return { contentStart: offset + 2, length: first };
  if (first === 0x80) return { contentStart: offset + 2, length: undefined };
  const count = first & 0x7f;
  if (count > 4 || offset + 2 + count > bytes.length) return undefined;
  let length = 0;
  for (let i = 0; i < count; i++) length = length * 256 + bytes[offset + 2 + i];
  return { contentStart: offset + 2 + count, length };
}

/** True when the bytes are shaped like a PKCS#12 PFX (DER, or BER with indefinite lengths). */
export function looksLikePkcs12(bytes: Buffer): boolean {
  const pfx = readHeader(bytes, 0, 0x30);
  if (!pfx) return false;
  if (pfx.length === undefined) {
    if (bytes.length < 4 || bytes[bytes.length - 1] !== 0 || bytes[bytes.length - 2] !== 0) return false;
  } else if (pfx.contentStart + pfx.length !== bytes.length) {
    return false;
  }
  let at = pfx.contentStart;
  if (bytes[at] !== 0x02 || bytes[at + 1] !== 0x01 || bytes[at + 2] !== 0x03) return false;
  at += 3;
  const contentInfo = readHeader(bytes, at, 0x30);
  if (!contentInfo) return false;
  const end = pfx.length === undefined ? bytes.length : pfx.contentStart + pfx.length;
  if (contentInfo.length !== undefined && contentInfo.contentStart + contentInfo.length > end) return false;
  const oid = bytes.subarray(contentInfo.contentStart, contentInfo.contentStart + PKCS7_DATA.length);
  return oid.equals(PKCS7_DATA) || oid.equals(PKCS7_SIGNED_DATA);
}

/** True when the bytes are base64 text (line breaks allowed) of a PKCS#12 blob. */
export function isBase64Pkcs12(text: Buffer): boolean {
  const compact = Buffer.from(text.filter((byte) => byte !== 0x0d && byte !== 0x0a));
  try {
    const ascii = compact.toString('latin1');
    if (compact.length === 0 || compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(ascii)) return false;
    const bytes = Buffer.from(ascii, 'base64');
    try {
      return looksLikePkcs12(bytes);
    } finally {
      bytes.fill(0);
    }
  } finally {
    compact.fill(0);
  }
}
