// The central-directory records of entries yazl has written, kept as bytes until the archive ends.
//
// yazl keeps every entry (an object with a Date, a name Buffer and a dozen fields) until end(),
// only to write its central-directory record; at scale 1 that is one of the things that grow the
// backup's heap with every file. Once an entry's data is written, every field of its record is
// final (CRC-32, sizes, offset), so its record is made then, with yazl's own
// getCentralDirectoryRecord(), and the entry is let go. At end() one stand-in per record gives the
// records back in order, so yazl writes the same central directory and counts the same entries.

/** What a written yazl 3.x entry offers (see zip-writer.ts for the other fields used). */
export interface WrittenYazlEntry {
  state?: number;
  getCentralDirectoryRecord?: () => Buffer;
}

/** yazl 3.x's Entry.FILE_DATA_DONE. */
export const FILE_DATA_DONE = 3;

const BLOCK_BYTES = 256 * 1024;
const RECORD_SIGNATURE = 0x02014b50;
const FIXED_RECORD_BYTES = 46;

export class CentralDirectoryRecords {
  private readonly blocks: Buffer[] = [];
  private block: Buffer | undefined;
  private used = 0;
  private recordCount = 0;

  get count(): number {
    return this.recordCount;
  }

  /**
   * Takes a written entry's record. False (and nothing taken) if this entry cannot give one: the
   * caller then keeps the entry itself, as before.
   */
  take(entry: WrittenYazlEntry): boolean {
    if (entry.state !== FILE_DATA_DONE || typeof entry.getCentralDirectoryRecord !== 'function') return false;
    const record = entry.getCentralDirectoryRecord();
    if (!Buffer.isBuffer(record) || record.length < FIXED_RECORD_BYTES || record.readUInt32LE(0) !== RECORD_SIGNATURE || recordLength(record, 0) !== record.length) return false;
    this.append(record);
    this.recordCount += 1;
    return true;
  }

  private append(record: Buffer): void {
    if (!this.block || this.used + record.length > this.block.length) {
      if (this.block) this.blocks.push(this.block.subarray(0, this.used));
      this.block = Buffer.allocUnsafeSlow(Math.max(BLOCK_BYTES, record.length));
      this.used = 0;
    }
    record.copy(this.block, this.used);
    this.used += record.length;
  }

  /**
   * One stand-in entry per record, in the order taken, each giving its record when yazl asks
   * (yazl asks each entry once, in list order, when it writes the central directory). The records
   * are handed over: this object is empty afterwards.
   */
  standIns(): WrittenYazlEntry[] {
    if (this.block) this.blocks.push(this.block.subarray(0, this.used));
    const blocks = this.blocks.splice(0);
    this.block = undefined;
    this.used = 0;
    let blockIndex = 0;
    let offset = 0;
    const next = (): Buffer => {
      while (blockIndex < blocks.length && offset >= blocks[blockIndex].length) {
        blocks[blockIndex] = Buffer.alloc(0);
        blockIndex += 1;
        offset = 0;
      }
      if (blockIndex >= blocks.length) throw new Error('The archive asked for more central-directory records than were written.');
      const block = blocks[blockIndex];
      const length = recordLength(block, offset);
      const record = block.subarray(offset, offset + length);
      offset += length;
      return record;
    };
    // One shared object: the list holds a reference per record, not an object per record.
    const standIn: WrittenYazlEntry = { state: FILE_DATA_DONE, getCentralDirectoryRecord: next };
    const list = new Array<WrittenYazlEntry>(this.recordCount).fill(standIn);
    this.recordCount = 0;
    return list;
  }
}

/** A central-directory record's length: the fixed part, then name, extra field and comment. */
function recordLength(bytes: Buffer, offset: number): number {
  return FIXED_RECORD_BYTES + bytes.readUInt16LE(offset + 28) + bytes.readUInt16LE(offset + 30) + bytes.readUInt16LE(offset + 32);
}
