// TDS 7.4 wire format for the simulator: packet framing, the tokens a server sends, and the
// client messages it reads (PRELOGIN, LOGIN7, SQL batch, RPC). Written from [MS-TDS].
import type { SqlType, SqlValue } from '../engine/types';

export const PacketType = { SqlBatch: 0x01, Rpc: 0x03, TabularResult: 0x04, Attention: 0x06, TransactionManager: 0x0e, Login7: 0x10, Prelogin: 0x12 } as const;
export const Status = { Normal: 0x00, Eom: 0x01, Ignore: 0x02, ResetConnection: 0x08, ResetConnectionSkipTran: 0x10 } as const;
export const Done = { Final: 0x00, More: 0x01, Error: 0x02, Count: 0x10, Attention: 0x20, ServerError: 0x100 } as const;
export const TDS_7_4 = 0x74000004;
/** SQL_Latin1_General_CP1_CI_AS: LCID 1033, code page 1252. */
export const COLLATION = Buffer.from([0x09, 0x04, 0xd0, 0x00, 0x34]);

export interface Message {
  type: number;
  status: number;
  payload: Buffer;
}

/** Reassembles packets into messages; attention packets are reported on their own. */
export class MessageReader {
  private firstStatus = 0;
  private buffer: Buffer = Buffer.alloc(0);
  private parts: Buffer[] = [];
  private currentType = -1;

  push(chunk: Buffer): Message[] {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    const out: Message[] = [];
    while (this.buffer.length >= 8) {
      const length = this.buffer.readUInt16BE(2);
      if (length < 8) throw new Error(`Invalid TDS packet length ${length}`);
      if (this.buffer.length < length) break;
      const type = this.buffer[0];
      const status = this.buffer[1];
      const payload = this.buffer.subarray(8, length);
      this.buffer = this.buffer.subarray(length);
      if (type === PacketType.Attention) {
        out.push({ type, status, payload: Buffer.alloc(0) });
        continue;
      }
      if (this.currentType === -1) {
        this.currentType = type;
        this.firstStatus = status;
      }
      this.parts.push(Buffer.from(payload));
      if (status & (Status.Eom | Status.Ignore)) {
        // RESETCONNECTION (0x08) / RESETCONNECTIONSKIPTRAN (0x10) travel on the message's first packet.
        out.push({ type: this.currentType, status: status | (this.firstStatus & (Status.ResetConnection | Status.ResetConnectionSkipTran)), payload: Buffer.concat(this.parts) });
        this.parts = [];
        this.currentType = -1;
      }
    }
    return out;
  }
}

/** Splits a message into packets of at most packetSize bytes. */
export function packets(type: number, payload: Buffer, packetSize: number, endOfMessage: boolean): Buffer[] {
  const room = packetSize - 8;
  const out: Buffer[] = [];
  let offset = 0;
  do {
    const chunk = payload.subarray(offset, offset + room);
    offset += chunk.length;
    const last = offset >= payload.length;
    const header = Buffer.alloc(8);
    header[0] = type;
    header[1] = last && endOfMessage ? Status.Eom : Status.Normal;
    header.writeUInt16BE(chunk.length + 8, 2);
    header.writeUInt16BE(0x0033, 4); // SPID, informational
    header[6] = out.length & 0xff;
    out.push(Buffer.concat([header, chunk]));
  } while (offset < payload.length);
  return out;
}

/** Little-endian byte builder. */
export class Bytes {
  private chunks: Buffer[] = [];
  get length(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0);
  }
  raw(b: Buffer): this { this.chunks.push(b); return this; }
  u8(n: number): this { const b = Buffer.alloc(1); b.writeUInt8(n); return this.raw(b); }
  u16(n: number): this { const b = Buffer.alloc(2); b.writeUInt16LE(n); return this.raw(b); }
  u32(n: number): this { const b = Buffer.alloc(4); b.writeUInt32LE(n >>> 0); return this.raw(b); }
  i32(n: number): this { const b = Buffer.alloc(4); b.writeInt32LE(n); return this.raw(b); }
  u64(n: bigint | number): this { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return this.raw(b); }
  bVarchar(s: string): this { return this.u8(s.length).raw(Buffer.from(s, 'utf16le')); }
  usVarchar(s: string): this { return this.u16(s.length).raw(Buffer.from(s, 'utf16le')); }
  toBuffer(): Buffer { return Buffer.concat(this.chunks); }
}

// ---- tokens ----

export function doneToken(token: 0xfd | 0xfe | 0xff, status: number, rowCount: number | bigint = 0, curCmd = 0xc1): Buffer {
  return new Bytes().u8(token).u16(status).u16(curCmd).u64(rowCount).toBuffer();
}

export function messageToken(kind: 'info' | 'error', m: { number: number; state?: number; class?: number; message: string; serverName?: string; procName?: string; line?: number }): Buffer {
  const body = new Bytes()
    .u32(m.number)
    .u8(m.state ?? 1)
    .u8(m.class ?? (kind === 'info' ? 0 : 16))
    .usVarchar(m.message.slice(0, 4000))
    .bVarchar((m.serverName ?? 'SQLSIM').slice(0, 255))
    .bVarchar((m.procName ?? '').slice(0, 255))
    .u32(m.line ?? 1)
    .toBuffer();
  return new Bytes().u8(kind === 'info' ? 0xab : 0xaa).u16(body.length).raw(body).toBuffer();
}

export function envChangeToken(type: number, newValue: string | Buffer, oldValue: string | Buffer): Buffer {
  const body = new Bytes().u8(type);
  for (const v of [newValue, oldValue]) {
    if (typeof v === 'string') body.bVarchar(v);
    else body.u8(v.length).raw(v);
  }
  const b = body.toBuffer();
  return new Bytes().u8(0xe3).u16(b.length).raw(b).toBuffer();
}

export function loginAckToken(progName: string, version: [number, number, number]): Buffer {
  const versionBytes = Buffer.alloc(4);
  versionBytes.writeUInt32BE(TDS_7_4);
  const body = new Bytes()
    .u8(1)
    .raw(versionBytes)
    .bVarchar(progName)
    .u8(version[0]).u8(version[1]).u8((version[2] >> 8) & 0xff).u8(version[2] & 0xff)
    .toBuffer();
  return new Bytes().u8(0xad).u16(body.length).raw(body).toBuffer();
}

/** FEDAUTHINFO (0xEE): where the client gets its Entra token (STS URL) and for which resource (SPN). */
export function fedAuthInfoToken(stsUrl: string, spn: string): Buffer {
  const options: [number, Buffer][] = [[0x01, Buffer.from(stsUrl, 'utf16le')], [0x02, Buffer.from(spn, 'utf16le')]];
  const headerLength = 4 + options.length * 9;
  const header = new Bytes().u32(options.length);
  let offset = headerLength;
  for (const [id, data] of options) {
    header.u8(id).u32(data.length).u32(offset);
    offset += data.length;
  }
  const body = Buffer.concat([header.toBuffer(), ...options.map(([, d]) => d)]);
  return new Bytes().u8(0xee).u32(body.length).raw(body).toBuffer();
}

export function returnStatusToken(value: number): Buffer {
  return new Bytes().u8(0x79).i32(value).toBuffer();
}

// ---- column types and values ----

function typeInfo(t: SqlType): Buffer {
  const b = new Bytes();
  switch (t.name) {
    case 'int': return b.u8(0x26).u8(4).toBuffer();
    case 'bigint': return b.u8(0x26).u8(8).toBuffer();
    case 'smallint': return b.u8(0x26).u8(2).toBuffer();
    case 'tinyint': return b.u8(0x26).u8(1).toBuffer();
    case 'bit': return b.u8(0x68).u8(1).toBuffer();
    case 'float': return b.u8(0x6d).u8(8).toBuffer();
    case 'nvarchar': case 'nchar':
      return b.u8(0xe7).u16(t.length === 'max' ? 0xffff : Math.min(8000, (t.length ?? 1) * 2)).raw(COLLATION).toBuffer();
    case 'varchar': case 'char':
      return b.u8(0xa7).u16(t.length === 'max' ? 0xffff : Math.min(8000, t.length ?? 1)).raw(COLLATION).toBuffer();
    case 'varbinary': case 'binary':
      return b.u8(0xa5).u16(t.length === 'max' ? 0xffff : Math.min(8000, t.length ?? 1)).toBuffer();
    case 'datetime': return b.u8(0x6f).u8(8).toBuffer();
    case 'date': return b.u8(0x28).toBuffer();
    case 'datetime2': return b.u8(0x2a).u8(t.scale ?? 7).toBuffer();
    case 'uniqueidentifier': return b.u8(0x24).u8(16).toBuffer();
    case 'numeric': case 'decimal':
      return b.u8(0x6c).u8(numericLength(t.precision ?? 18)).u8(t.precision ?? 18).u8(t.scale ?? 0).toBuffer();
  }
}

function numericLength(precision: number): number {
  return precision <= 9 ? 5 : precision <= 19 ? 9 : precision <= 28 ? 13 : 17;
}

export function colMetadataToken(columns: { name: string; type: SqlType }[]): Buffer {
  const b = new Bytes().u8(0x81).u16(columns.length);
  for (const c of columns) b.u32(0).u16(0x0001 | 0x0008).raw(typeInfo(c.type)).bVarchar(c.name.slice(0, 128));
  return b.toBuffer();
}

function plp(data: Buffer | null): Buffer {
  const b = new Bytes();
  if (data === null) return b.u64(0xffffffffffffffffn).toBuffer();
  b.u64(data.length);
  if (data.length) b.u32(data.length).raw(data);
  return b.u32(0).toBuffer();
}

const DAY_MS = 86_400_000;

/**
 * datetime2 keeps 100 ns; a JS Date only milliseconds. The 100 ns ticks below the millisecond
 * (0-9999) ride along on the Date, so a datetime2(7) value round-trips exactly.
 */
export interface PreciseDate extends Date {
  extraTicks?: number;
}

export function withExtraTicks(date: Date, extraTicks: number): PreciseDate {
  if (extraTicks) (date as PreciseDate).extraTicks = extraTicks;
  return date;
}

function extraTicksOf(date: Date): number {
  return (date as PreciseDate).extraTicks ?? 0;
}
const EPOCH_1900 = Date.UTC(1900, 0, 1);
const EPOCH_0001 = Date.UTC(2000, 0, 1) - 730119 * DAY_MS; // 0001-01-01 (proleptic Gregorian)

function valueBytes(t: SqlType, v: SqlValue): Buffer {
  const b = new Bytes();
  const isNull = v === null;
  switch (t.name) {
    case 'int': case 'smallint': case 'tinyint': case 'bigint': {
      const size = t.name === 'int' ? 4 : t.name === 'bigint' ? 8 : t.name === 'smallint' ? 2 : 1;
      if (isNull) return b.u8(0).toBuffer();
      const buf = Buffer.alloc(size);
      if (size === 8) buf.writeBigInt64LE(BigInt(v as number | bigint));
      else if (size === 4) buf.writeInt32LE(Number(v));
      else if (size === 2) buf.writeInt16LE(Number(v));
      else buf.writeUInt8(Number(v));
      return b.u8(size).raw(buf).toBuffer();
    }
    case 'bit':
      return isNull ? b.u8(0).toBuffer() : b.u8(1).u8(v ? 1 : 0).toBuffer();
    case 'float': {
      if (isNull) return b.u8(0).toBuffer();
      const buf = Buffer.alloc(8);
      buf.writeDoubleLE(Number(v));
      return b.u8(8).raw(buf).toBuffer();
    }
    case 'nvarchar': case 'nchar': case 'varchar': case 'char': case 'varbinary': case 'binary': {
      const data = isNull
        ? null
        : Buffer.isBuffer(v)
          ? v
          : Buffer.from(String(v), t.name.startsWith('n') ? 'utf16le' : 'latin1');
      if (t.length === 'max') return plp(data);
      if (data === null) return b.u16(0xffff).toBuffer();
      return b.u16(data.length).raw(data).toBuffer();
    }
    case 'datetime': {
      if (isNull) return b.u8(0).toBuffer();
      const ms = (v as Date).getTime() - EPOCH_1900;
      const days = Math.floor(ms / DAY_MS);
      const ticks = Math.round(((ms - days * DAY_MS) * 300) / 1000);
      return b.u8(8).i32(days).u32(ticks).toBuffer();
    }
    case 'date': case 'datetime2': {
      if (isNull) return b.u8(0).toBuffer();
      const ms = (v as Date).getTime() - EPOCH_0001;
      const days = Math.floor(ms / DAY_MS);
      const date = Buffer.alloc(3);
      date.writeUIntLE(days, 0, 3);
      if (t.name === 'date') return b.u8(3).raw(date).toBuffer();
      const scale = t.scale ?? 7;
      const timeLength = scale <= 2 ? 3 : scale <= 4 ? 4 : 5;
      // 100 ns ticks since midnight: whole milliseconds from the Date, the rest from its extra ticks.
      const ticks = BigInt(ms - days * DAY_MS) * 10_000n + BigInt(extraTicksOf(v as Date));
      const divisor = 10n ** BigInt(7 - scale);
      const units = (ticks + divisor / 2n) / divisor;
      const time = Buffer.alloc(8);
      time.writeBigUInt64LE(units);
      return b.u8(timeLength + 3).raw(time.subarray(0, timeLength)).raw(date).toBuffer();
    }
    case 'uniqueidentifier': {
      if (isNull) return b.u8(0).toBuffer();
      const hex = String(v).replace(/-/g, '');
      const raw = Buffer.from(hex, 'hex');
      const g = Buffer.concat([Buffer.from(raw.subarray(0, 4)).reverse(), Buffer.from(raw.subarray(4, 6)).reverse(), Buffer.from(raw.subarray(6, 8)).reverse(), raw.subarray(8)]);
      return b.u8(16).raw(g).toBuffer();
    }
    case 'numeric': case 'decimal': {
      if (isNull) return b.u8(0).toBuffer();
      const scale = t.scale ?? 0;
      const length = numericLength(t.precision ?? 18);
      let scaled: bigint;
      if (typeof v === 'bigint') scaled = v * 10n ** BigInt(scale);
      else {
        const [whole, frac = ''] = Number(v).toFixed(scale).split('.');
        scaled = BigInt(whole + frac);
      }
      const negative = scaled < 0n;
      const magnitude = negative ? -scaled : scaled;
      const buf = Buffer.alloc(length - 1);
      let m = magnitude;
      for (let i = 0; i < buf.length; i++) {
        buf[i] = Number(m & 0xffn);
        m >>= 8n;
      }
      return b.u8(length).u8(negative ? 0 : 1).raw(buf).toBuffer();
    }
  }
}

/** RETURNVALUE (0xAC): an OUTPUT parameter's value after an RPC, sent after RETURNSTATUS. */
export function returnValueToken(ordinal: number, name: string, type: SqlType, value: SqlValue): Buffer {
  return new Bytes().u8(0xac).u16(ordinal).bVarchar(name).u8(0x01).u32(0).u16(0x0001).raw(typeInfo(type)).raw(valueBytes(type, value)).toBuffer();
}

export function rowToken(columns: { type: SqlType }[], values: SqlValue[]): Buffer {
  return Buffer.concat([Buffer.from([0xd1]), ...columns.map((c, i) => valueBytes(c.type, values[i] ?? null))]);
}

// ---- client messages ----

/** Reads little-endian values from a buffer, failing loudly on truncation. */
export class Reader {
  constructor(readonly buffer: Buffer, public offset = 0) {}
  get remaining(): number { return this.buffer.length - this.offset; }
  private need(n: number): void {
    if (this.offset + n > this.buffer.length) throw new Error(`TDS message truncated at ${this.offset} (+${n})`);
  }
  u8(): number { this.need(1); return this.buffer.readUInt8(this.offset++); }
  u16(): number { this.need(2); const v = this.buffer.readUInt16LE(this.offset); this.offset += 2; return v; }
  u32(): number { this.need(4); const v = this.buffer.readUInt32LE(this.offset); this.offset += 4; return v; }
  i32(): number { this.need(4); const v = this.buffer.readInt32LE(this.offset); this.offset += 4; return v; }
  u64(): bigint { this.need(8); const v = this.buffer.readBigUInt64LE(this.offset); this.offset += 8; return v; }
  bytes(n: number): Buffer { this.need(n); const v = this.buffer.subarray(this.offset, this.offset + n); this.offset += n; return v; }
  bVarchar(): string { return this.bytes(this.u8() * 2).toString('utf16le'); }
  usVarchar(): string { return this.bytes(this.u16() * 2).toString('utf16le'); }
}

export interface PreloginRequest {
  encryption: number;
}

export function parsePrelogin(payload: Buffer): PreloginRequest {
  let encryption = 0x02;
  for (let i = 0; i < payload.length && payload[i] !== 0xff; i += 5) {
    const token = payload[i];
    const offset = payload.readUInt16BE(i + 1);
    if (token === 0x01) encryption = payload[offset];
  }
  return { encryption };
}

export function preloginResponse(encryption: number): Buffer {
  // VERSION, ENCRYPTION, INSTOPT, THREADID, MARS: option table (5 bytes each), 0xFF, data.
  const data: [number, Buffer][] = [
    [0x00, Buffer.from([16, 0, 0x10, 0x27, 0, 0])],
    [0x01, Buffer.from([encryption])],
    [0x02, Buffer.from([0])],
    [0x03, Buffer.alloc(4)],
    [0x04, Buffer.from([0])],
  ];
  const tableLength = data.length * 5 + 1;
  const table = Buffer.alloc(tableLength);
  let offset = tableLength;
  data.forEach(([token, value], i) => {
    table[i * 5] = token;
    table.writeUInt16BE(offset, i * 5 + 1);
    table.writeUInt16BE(value.length, i * 5 + 3);
    offset += value.length;
  });
  table[tableLength - 1] = 0xff;
  return Buffer.concat([table, ...data.map(([, v]) => v)]);
}

export interface Login7 {
  tdsVersion: number;
  packetSize: number;
  hostName: string;
  userName: string;
  password: string;
  appName: string;
  serverName: string;
  database: string;
  /** Windows (SSPI/NTLM) authentication was requested instead of a SQL login. */
  integratedSecurity: boolean;
  /** Federated (Entra) authentication was requested in the feature extension. */
  federatedAuthentication: boolean;
}

function deobfuscate(b: Buffer): string {
  const out = Buffer.alloc(b.length);
  for (let i = 0; i < b.length; i++) {
    const x = b[i] ^ 0xa5;
    out[i] = ((x & 0x0f) << 4) | (x >> 4);
  }
  return out.toString('utf16le');
}

export function parseLogin7(payload: Buffer): Login7 {
  const field = (at: number) => {
    const offset = payload.readUInt16LE(at);
    const length = payload.readUInt16LE(at + 2);
    return payload.subarray(offset, offset + length * 2);
  };
  const optionFlags2 = payload[25];
  const optionFlags3 = payload[27];
  let federatedAuthentication = false;
  if (optionFlags3 & 0x10) {
    const extOffset = payload.readUInt16LE(56);
    const extLength = payload.readUInt16LE(58);
    if (extLength >= 4) {
      let at = payload.readUInt32LE(extOffset);
      while (at < payload.length && payload[at] !== 0xff) {
        if (payload[at] === 0x02) federatedAuthentication = true;
        at += 5 + payload.readUInt32LE(at + 1);
      }
    }
  }
  return {
    tdsVersion: payload.readUInt32LE(4),
    packetSize: payload.readUInt32LE(8),
    hostName: field(36).toString('utf16le'),
    userName: field(40).toString('utf16le'),
    password: deobfuscate(field(44)),
    appName: field(48).toString('utf16le'),
    serverName: field(52).toString('utf16le'),
    database: field(68).toString('utf16le'),
    integratedSecurity: (optionFlags2 & 0x80) !== 0,
    federatedAuthentication,
  };
}

function skipAllHeaders(r: Reader): void {
  const total = r.buffer.readUInt32LE(r.offset);
  r.offset += total;
}

export function parseSqlBatch(payload: Buffer): string {
  const r = new Reader(payload);
  // TDS 7.2+ always starts with ALL_HEADERS; its total length is at least 4 and far below 64K of text.
  if (payload.length >= 4 && payload.readUInt32LE(0) >= 4 && payload.readUInt32LE(0) <= payload.length && payload.readUInt32LE(0) < 1024) skipAllHeaders(r);
  return r.bytes(r.remaining).toString('utf16le');
}

export interface RpcParam {
  name: string;
  output: boolean;
  type: SqlType;
  value: SqlValue;
}

export interface RpcRequest {
  procedure: string;
  params: RpcParam[];
}

function readPlp(r: Reader): Buffer | null {
  const total = r.u64();
  if (total === 0xffffffffffffffffn) return null;
  const chunks: Buffer[] = [];
  for (;;) {
    const length = r.u32();
    if (length === 0) break;
    chunks.push(r.bytes(length));
  }
  return Buffer.concat(chunks);
}

function readDecimalMagnitude(bytes: Buffer): bigint {
  let m = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) m = (m << 8n) | BigInt(bytes[i]);
  return m;
}

function readTypedValue(r: Reader): { type: SqlType; value: SqlValue } {
  const typeByte = r.u8();
  switch (typeByte) {
    case 0x26: { // INTN
      const max = r.u8();
      const length = r.u8();
      const type: SqlType = { name: max === 8 ? 'bigint' : max === 2 ? 'smallint' : max === 1 ? 'tinyint' : 'int' };
      if (length === 0) return { type, value: null };
      const b = r.bytes(length);
      const value = length === 8 ? b.readBigInt64LE(0) : length === 4 ? b.readInt32LE(0) : length === 2 ? b.readInt16LE(0) : b.readUInt8(0);
      return { type, value };
    }
    case 0x68: { // BITN
      r.u8();
      const length = r.u8();
      return { type: { name: 'bit' }, value: length === 0 ? null : r.u8() !== 0 };
    }
    case 0x6d: { // FLTN
      r.u8();
      const length = r.u8();
      if (length === 0) return { type: { name: 'float' }, value: null };
      const b = r.bytes(length);
      return { type: { name: 'float' }, value: length === 8 ? b.readDoubleLE(0) : b.readFloatLE(0) };
    }
    case 0xe7: case 0xa7: case 0xef: case 0xaf: { // NVARCHAR, VARCHAR, NCHAR, CHAR
      const maxBytes = r.u16();
      r.bytes(5);
      const unicode = typeByte === 0xe7 || typeByte === 0xef;
      const name = typeByte === 0xe7 ? 'nvarchar' : typeByte === 0xa7 ? 'varchar' : typeByte === 0xef ? 'nchar' : 'char';
      const type: SqlType = { name, length: maxBytes === 0xffff ? 'max' : unicode ? maxBytes / 2 : maxBytes };
      let data: Buffer | null;
      if (maxBytes === 0xffff) data = readPlp(r);
      else {
        const length = r.u16();
        data = length === 0xffff ? null : r.bytes(length);
      }
      return { type, value: data === null ? null : data.toString(unicode ? 'utf16le' : 'latin1') };
    }
    case 0xa5: case 0xad: { // VARBINARY, BINARY
      const maxBytes = r.u16();
      const type: SqlType = { name: typeByte === 0xa5 ? 'varbinary' : 'binary', length: maxBytes === 0xffff ? 'max' : maxBytes };
      if (maxBytes === 0xffff) return { type, value: readPlp(r) };
      const length = r.u16();
      return { type, value: length === 0xffff ? null : Buffer.from(r.bytes(length)) };
    }
    case 0x6f: { // DATETIMEN
      r.u8();
      const length = r.u8();
      if (length === 0) return { type: { name: 'datetime' }, value: null };
      if (length === 4) {
        const days = r.u16();
        const minutes = r.u16();
        return { type: { name: 'datetime' }, value: new Date(EPOCH_1900 + days * DAY_MS + minutes * 60_000) };
      }
      const days = r.i32();
      const ticks = r.u32();
      return { type: { name: 'datetime' }, value: new Date(EPOCH_1900 + days * DAY_MS + Math.round((ticks * 1000) / 300)) };
    }
    case 0x28: { // DATEN
      const length = r.u8();
      if (length === 0) return { type: { name: 'date' }, value: null };
      return { type: { name: 'date' }, value: new Date(EPOCH_0001 + r.bytes(3).readUIntLE(0, 3) * DAY_MS) };
    }
    case 0x2a: { // DATETIME2N
      const scale = r.u8();
      const length = r.u8();
      const type: SqlType = { name: 'datetime2', scale };
      if (length === 0) return { type, value: null };
      const time = r.bytes(length - 3);
      const padded = Buffer.alloc(8);
      time.copy(padded);
      const units = padded.readBigUInt64LE(0);
      const days = r.bytes(3).readUIntLE(0, 3);
      const ticks = units * 10n ** BigInt(7 - scale);
      return { type, value: withExtraTicks(new Date(EPOCH_0001 + days * DAY_MS + Number(ticks / 10_000n)), Number(ticks % 10_000n)) };
    }
    case 0x6a: case 0x6c: { // DECIMALN, NUMERICN
      r.u8();
      const precision = r.u8();
      const scale = r.u8();
      const type: SqlType = { name: 'numeric', precision, scale };
      const length = r.u8();
      if (length === 0) return { type, value: null };
      const sign = r.u8();
      const magnitude = readDecimalMagnitude(r.bytes(length - 1));
      const signed = sign === 1 ? magnitude : -magnitude;
      const value = scale === 0 ? signed : Number(signed) / 10 ** scale;
      return { type, value };
    }
    case 0x24: { // GUID
      r.u8();
      const length = r.u8();
      if (length === 0) return { type: { name: 'uniqueidentifier' }, value: null };
      const b = r.bytes(16);
      const hex = Buffer.concat([Buffer.from(b.subarray(0, 4)).reverse(), Buffer.from(b.subarray(4, 6)).reverse(), Buffer.from(b.subarray(6, 8)).reverse(), b.subarray(8)]).toString('hex').toUpperCase();
      return { type: { name: 'uniqueidentifier' }, value: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}` };
    }
    default:
      throw new Error(`The SQL Server simulator cannot decode RPC parameter type 0x${typeByte.toString(16)}.`);
  }
}

const PROC_IDS: Record<number, string> = { 10: 'sp_executesql', 11: 'sp_prepare', 12: 'sp_execute', 13: 'sp_prepexec', 15: 'sp_unprepare' };

export function parseRpc(payload: Buffer): RpcRequest {
  const r = new Reader(payload);
  skipAllHeaders(r);
  const nameLength = r.u16();
  const procedure = nameLength === 0xffff ? (PROC_IDS[r.u16()] ?? 'unknown') : r.bytes(nameLength * 2).toString('utf16le');
  r.u16(); // option flags
  const params: RpcParam[] = [];
  while (r.remaining > 0) {
    if (r.buffer[r.offset] === 0x80 || r.buffer[r.offset] === 0xff) break; // batch separator
    const name = r.bVarchar();
    const status = r.u8();
    const { type, value } = readTypedValue(r);
    params.push({ name, output: (status & 0x01) !== 0, type, value });
  }
  return { procedure, params };
}
