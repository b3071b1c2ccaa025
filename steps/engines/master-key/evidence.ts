// Collects the outcomes of trying a key on documents, as the verdict needs them. The caller
// (which reads the database) hands over each document's JSON text; nothing here keeps it.
import { checkEncryptedValue } from './decrypt';
import type { DocumentRef, Evidence, MalformedFinding, TestedValue } from './decide';
import { findEncryptedValues, parseDocument } from './extract';
import type { MasterKey } from './key';

export class EvidenceCollector {
  private readonly values: TestedValue[] = [];
  private readonly malformed: MalformedFinding[] = [];
  private readonly unreadable: DocumentRef[] = [];
  private certificate: DocumentRef | undefined;
  private documents = 0;

  constructor(private readonly key: MasterKey) {}

  /** Tries the key on every encrypted value in the document; returns how many it holds.
   * `limit` caps how many of them are tested (a sample); the certificate's are all tested. */
  addDocument(ref: DocumentRef, json: string | null | undefined, role: 'certificate' | 'sample', limit = Infinity): number {
    this.documents += 1;
    if (role === 'certificate') this.certificate = { table: ref.table, documentId: ref.documentId };
    if (json === null || json === undefined) {
      this.unreadable.push({ table: ref.table, documentId: ref.documentId });
      return 0;
    }
    const document = parseDocument(json);
    if (document === undefined) {
      this.unreadable.push({ table: ref.table, documentId: ref.documentId });
      return 0;
    }
    const found = findEncryptedValues(document);
    for (const m of found.malformed) this.malformed.push({ table: ref.table, documentId: ref.documentId, path: m.path, problem: m.problem });
    const chosen = role === 'certificate' ? found.values : found.values.slice(0, Math.max(0, limit));
    for (const value of chosen) {
      const outcome = checkEncryptedValue(this.key, value, role === 'certificate' ? 'pkcs12' : 'text');
      this.values.push({ table: ref.table, documentId: ref.documentId, path: value.path, role, outcome });
    }
    return chosen.length;
  }

  /** Records a document that could not be read at all (e.g. DECOMPRESS failed). */
  addUnreadable(ref: DocumentRef): void {
    this.documents += 1;
    this.unreadable.push({ table: ref.table, documentId: ref.documentId });
  }

  get documentsRead(): number {
    return this.documents;
  }

  get sampleValuesTested(): number {
    return this.values.filter((v) => v.role === 'sample').length;
  }

  evidence(): Evidence {
    return {
      key: { bits: this.key.bits, algorithm: this.key.algorithm, keyId: this.key.keyId },
      certificate: this.certificate,
      values: [...this.values],
      malformed: [...this.malformed],
      unreadableDocuments: [...this.unreadable],
    };
  }
}
