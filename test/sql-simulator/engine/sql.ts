// A small T-SQL lexer and expression parser: enough for the statements our steps send, never a
// general SQL engine. Anything it cannot parse is an error naming the statement.

export type Token =
  | { kind: 'word'; text: string; upper: string; quoted: boolean }
  | { kind: 'string'; text: string; unicode: boolean }
  | { kind: 'number'; text: string }
  | { kind: 'variable'; text: string }
  | { kind: 'punct'; text: string }
  | { kind: 'binary'; text: string };

export class SqlSyntaxError extends Error {}

export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i];
    if (/\s/.test(c)) { i++; continue; }
    if (c === '-' && sql[i + 1] === '-') { while (i < n && sql[i] !== '\n') i++; continue; }
    if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) throw new SqlSyntaxError("Missing end comment mark '*/'.");
      i = end + 2;
      continue;
    }
    if (c === "'" || ((c === 'N' || c === 'n') && sql[i + 1] === "'")) {
      const unicode = c !== "'";
      let j = unicode ? i + 2 : i + 1;
      let text = '';
      for (;;) {
        if (j >= n) throw new SqlSyntaxError(`Unclosed quotation mark after the character string '${text.slice(0, 40)}'.`);
        if (sql[j] === "'") {
          if (sql[j + 1] === "'") { text += "'"; j += 2; continue; }
          j++;
          break;
        }
        text += sql[j++];
      }
      tokens.push({ kind: 'string', text, unicode });
      i = j;
      continue;
    }
    if (c === '[') {
      let j = i + 1;
      let text = '';
      for (;;) {
        if (j >= n) throw new SqlSyntaxError(`Unclosed quotation mark before the identifier '${text.slice(0, 40)}'.`);
        if (sql[j] === ']') {
          if (sql[j + 1] === ']') { text += ']'; j += 2; continue; }
          j++;
          break;
        }
        text += sql[j++];
      }
      tokens.push({ kind: 'word', text, upper: text.toUpperCase(), quoted: true });
      i = j;
      continue;
    }
    if (c === '"') {
      const end = sql.indexOf('"', i + 1);
      if (end < 0) throw new SqlSyntaxError('Unclosed quoted identifier.');
      const text = sql.slice(i + 1, end);
      tokens.push({ kind: 'word', text, upper: text.toUpperCase(), quoted: true });
      i = end + 1;
      continue;
    }
    if (c === '0' && (sql[i + 1] === 'x' || sql[i + 1] === 'X')) {
      let j = i + 2;
      while (j < n && /[0-9a-fA-F]/.test(sql[j])) j++;
      tokens.push({ kind: 'binary', text: sql.slice(i + 2, j) });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      let j = i;
      while (j < n && /[0-9.]/.test(sql[j])) j++;
      tokens.push({ kind: 'number', text: sql.slice(i, j) });
      i = j;
      continue;
    }
    if (c === '@') {
      let j = i + 1;
      while (j < n && /[@A-Za-z0-9_#$]/.test(sql[j])) j++;
      tokens.push({ kind: 'variable', text: sql.slice(i, j) });
      i = j;
      continue;
    }
    if (/[A-Za-z_#\u0080-\uffff]/.test(c)) {
      let j = i;
      while (j < n && /[A-Za-z0-9_#$@\u0080-\uffff]/.test(sql[j])) j++;
      const text = sql.slice(i, j);
      tokens.push({ kind: 'word', text, upper: text.toUpperCase(), quoted: false });
      i = j;
      continue;
    }
    const two = sql.slice(i, i + 2);
    if (['<>', '!=', '<=', '>=', '+='].includes(two)) { tokens.push({ kind: 'punct', text: two }); i += 2; continue; }
    if ('(),.;=<>+-*/%'.includes(c)) { tokens.push({ kind: 'punct', text: c }); i++; continue; }
    throw new SqlSyntaxError(`Incorrect syntax near '${c}'.`);
  }
  return tokens;
}

/** Splits a batch into statements at top-level semicolons (the simulator requires them between statements). */
export function splitStatements(tokens: Token[]): Token[][] {
  const out: Token[][] = [];
  let current: Token[] = [];
  let depth = 0;
  let caseDepth = 0;
  for (const t of tokens) {
    if (t.kind === 'punct' && t.text === '(') depth++;
    if (t.kind === 'punct' && t.text === ')') depth--;
    // BEGIN ... END blocks and CASE ... END keep their semicolons (BEGIN TRAN is not a block).
    if (t.kind === 'word' && !t.quoted && (t.upper === 'BEGIN' || t.upper === 'CASE')) caseDepth++;
    if (t.kind === 'word' && !t.quoted && (t.upper === 'TRAN' || t.upper === 'TRANSACTION') && current[current.length - 1]?.kind === 'word' && (current[current.length - 1] as { upper: string }).upper === 'BEGIN') caseDepth--;
    if (t.kind === 'word' && !t.quoted && t.upper === 'END') caseDepth--;
    if (t.kind === 'punct' && t.text === ';' && depth === 0 && caseDepth <= 0) {
      if (current.length) out.push(current);
      current = [];
      continue;
    }
    current.push(t);
  }
  if (current.length) out.push(current);
  return out;
}

/** Text of tokens, for messages (identifiers re-quoted when needed, strings re-quoted). */
export function tokensText(tokens: Token[]): string {
  let out = '';
  let previous: Token | undefined;
  for (const t of tokens) {
    const text =
      t.kind === 'string' ? `${t.unicode ? 'N' : ''}'${t.text.replace(/'/g, "''")}'`
      : t.kind === 'word' && t.quoted ? `[${t.text.replace(/]/g, ']]')}]`
      : t.kind === 'binary' ? `0x${t.text}`
      : t.text;
    const tight = (t.kind === 'punct' && [',', '.', ')', ';'].includes(t.text)) || (previous?.kind === 'punct' && ['.', '('].includes(previous.text));
    out += (out && !tight ? ' ' : '') + text;
    previous = t;
  }
  return out;
}

// ---- expressions ----

export type Expr =
  | { kind: 'literal'; value: string | number | bigint | Buffer | null; unicode?: boolean }
  | { kind: 'variable'; name: string }
  | { kind: 'column'; parts: string[] }
  | { kind: 'star'; qualifier?: string }
  | { kind: 'call'; name: string; args: Expr[]; star?: boolean }
  | { kind: 'cast'; expr: Expr; type: string; style?: Expr }
  | { kind: 'unary'; op: string; expr: Expr }
  | { kind: 'binary'; op: string; left: Expr; right: Expr }
  | { kind: 'isnull'; expr: Expr; not: boolean }
  | { kind: 'in'; expr: Expr; list: Expr[]; not: boolean }
  | { kind: 'like'; expr: Expr; pattern: Expr; not: boolean }
  | { kind: 'case'; operand?: Expr; whens: { when: Expr; then: Expr }[]; otherwise?: Expr }
  | { kind: 'subquery'; tokens: Token[]; exists: boolean };

/** A cursor over tokens with the helpers statement handlers need. */
export class Cursor {
  constructor(readonly tokens: Token[], public at = 0) {}

  get done(): boolean { return this.at >= this.tokens.length; }
  peek(offset = 0): Token | undefined { return this.tokens[this.at + offset]; }
  next(): Token {
    const t = this.tokens[this.at++];
    if (!t) throw new SqlSyntaxError('Incorrect syntax near the end of the statement.');
    return t;
  }
  /** Is the next token this keyword (unquoted word)? */
  isWord(word: string, offset = 0): boolean {
    const t = this.peek(offset);
    return !!t && t.kind === 'word' && !t.quoted && t.upper === word;
  }
  isPunct(text: string, offset = 0): boolean {
    const t = this.peek(offset);
    return !!t && t.kind === 'punct' && t.text === text;
  }
  acceptWord(...words: string[]): boolean {
    if (!words.every((w, i) => this.isWord(w, i))) return false;
    this.at += words.length;
    return true;
  }
  acceptPunct(text: string): boolean {
    if (!this.isPunct(text)) return false;
    this.at++;
    return true;
  }
  expectWord(...words: string[]): void {
    if (!this.acceptWord(...words)) throw new SqlSyntaxError(`Incorrect syntax near '${this.nearText()}': expected ${words.join(' ')}.`);
  }
  expectPunct(text: string): void {
    if (!this.acceptPunct(text)) throw new SqlSyntaxError(`Incorrect syntax near '${this.nearText()}': expected '${text}'.`);
  }
  expectEnd(): void {
    if (!this.done) throw new SqlSyntaxError(`Incorrect syntax near '${this.nearText()}'.`);
  }
  nearText(): string {
    const t = this.peek();
    return t ? t.text : 'end of statement';
  }
  /** An identifier (word or [quoted]). */
  identifier(): string {
    const t = this.next();
    if (t.kind !== 'word') throw new SqlSyntaxError(`Incorrect syntax near '${t.text}': expected a name.`);
    return t.text;
  }
  /** a.b.c -> ['a','b','c'] (empty parts for a..c). */
  multipartName(): string[] {
    const parts = [this.identifier()];
    while (this.isPunct('.')) {
      this.at++;
      if (this.isPunct('.')) { parts.push(''); continue; }
      parts.push(this.identifier());
    }
    return parts;
  }
  /** A type name such as nvarchar(max), numeric(25,0). */
  typeName(): string {
    let text = this.identifier();
    if (this.acceptPunct('(')) {
      const args: string[] = [];
      do args.push(this.next().text); while (this.acceptPunct(','));
      this.expectPunct(')');
      text += `(${args.join(',')})`;
    }
    return text;
  }
  /** The tokens up to the ')' that closes an already consumed '(' (which is consumed too). */
  balanced(): Token[] {
    const start = this.at;
    let depth = 1;
    for (;;) {
      const t = this.next();
      if (t.kind === 'punct' && t.text === '(') depth++;
      if (t.kind === 'punct' && t.text === ')' && --depth === 0) return this.tokens.slice(start, this.at - 1);
    }
  }
  rest(): Token[] {
    const r = this.tokens.slice(this.at);
    this.at = this.tokens.length;
    return r;
  }

  expression(): Expr { return this.or(); }

  private or(): Expr {
    let left = this.and();
    while (this.acceptWord('OR')) left = { kind: 'binary', op: 'OR', left, right: this.and() };
    return left;
  }
  private and(): Expr {
    let left = this.not();
    while (this.acceptWord('AND')) left = { kind: 'binary', op: 'AND', left, right: this.not() };
    return left;
  }
  private not(): Expr {
    if (this.acceptWord('NOT')) return { kind: 'unary', op: 'NOT', expr: this.not() };
    return this.comparison();
  }
  private comparison(): Expr {
    const left = this.additive();
    if (this.acceptWord('IS')) {
      const not = this.acceptWord('NOT');
      this.expectWord('NULL');
      return { kind: 'isnull', expr: left, not };
    }
    const not = this.isWord('NOT') && (this.isWord('IN', 1) || this.isWord('LIKE', 1));
    if (not) this.at++;
    if (this.acceptWord('IN')) {
      this.expectPunct('(');
      const list: Expr[] = [];
      do list.push(this.expression()); while (this.acceptPunct(','));
      this.expectPunct(')');
      return { kind: 'in', expr: left, list, not };
    }
    if (this.acceptWord('LIKE')) return { kind: 'like', expr: left, pattern: this.additive(), not };
    const t = this.peek();
    if (t && t.kind === 'punct' && ['=', '<>', '!=', '<', '>', '<=', '>='].includes(t.text)) {
      this.at++;
      return { kind: 'binary', op: t.text === '!=' ? '<>' : t.text, left, right: this.additive() };
    }
    return left;
  }
  private additive(): Expr {
    let left = this.multiplicative();
    for (;;) {
      const t = this.peek();
      if (t && t.kind === 'punct' && (t.text === '+' || t.text === '-')) {
        this.at++;
        left = { kind: 'binary', op: t.text, left, right: this.multiplicative() };
      } else return left;
    }
  }
  private multiplicative(): Expr {
    let left = this.unary();
    for (;;) {
      const t = this.peek();
      if (t && t.kind === 'punct' && (t.text === '*' || t.text === '/' || t.text === '%')) {
        this.at++;
        left = { kind: 'binary', op: t.text, left, right: this.unary() };
      } else return left;
    }
  }
  private unary(): Expr {
    if (this.acceptPunct('-')) return { kind: 'unary', op: '-', expr: this.unary() };
    if (this.acceptPunct('+')) return this.unary();
    return this.primary();
  }
  private primary(): Expr {
    const t = this.next();
    switch (t.kind) {
      case 'string':
        return { kind: 'literal', value: t.text, unicode: t.unicode };
      case 'number':
        return { kind: 'literal', value: t.text.includes('.') ? Number(t.text) : Number(t.text) <= 2147483647 ? Number(t.text) : BigInt(t.text) };
      case 'binary':
        return { kind: 'literal', value: Buffer.from(t.text.length % 2 ? `0${t.text}` : t.text, 'hex') };
      case 'variable':
        return { kind: 'variable', name: t.text };
      case 'punct':
        if (t.text === '(' && this.isWord('SELECT')) return { kind: 'subquery', tokens: this.balanced(), exists: false };
        if (t.text === '(') {
          const e = this.expression();
          this.expectPunct(')');
          return e;
        }
        if (t.text === '*') return { kind: 'star' };
        throw new SqlSyntaxError(`Incorrect syntax near '${t.text}'.`);
      case 'word': {
        if (!t.quoted) {
          if (t.upper === 'NULL') return { kind: 'literal', value: null };
          if (t.upper === 'EXISTS' && this.isPunct('(')) {
            this.at++;
            return { kind: 'subquery', tokens: this.balanced(), exists: true };
          }
          if (t.upper === 'CAST' && this.isPunct('(')) {
            this.at++;
            const expr = this.expression();
            this.expectWord('AS');
            const type = this.typeName();
            this.expectPunct(')');
            return { kind: 'cast', expr, type };
          }
          if ((t.upper === 'CONVERT' || t.upper === 'TRY_CONVERT') && this.isPunct('(')) {
            this.at++;
            const type = this.typeName();
            this.expectPunct(',');
            const expr = this.expression();
            const style = this.acceptPunct(',') ? this.expression() : undefined;
            this.expectPunct(')');
            return { kind: 'cast', expr, type, style };
          }
          if (t.upper === 'CASE') {
            const operand = this.isWord('WHEN') ? undefined : this.expression();
            const whens: { when: Expr; then: Expr }[] = [];
            while (this.acceptWord('WHEN')) {
              const when = this.expression();
              this.expectWord('THEN');
              whens.push({ when, then: this.expression() });
            }
            const otherwise = this.acceptWord('ELSE') ? this.expression() : undefined;
            this.expectWord('END');
            return { kind: 'case', operand, whens, otherwise };
          }
        }
        const parts = [t.text];
        while (this.isPunct('.')) {
          this.at++;
          if (this.isPunct('*')) { this.at++; return { kind: 'star', qualifier: parts.join('.') }; }
          if (this.isPunct('.')) { parts.push(''); continue; }
          parts.push(this.identifier());
        }
        if (this.isPunct('(')) {
          this.at++;
          const args: Expr[] = [];
          let star = false;
          if (this.acceptPunct('*')) star = true;
          else if (!this.isPunct(')')) do args.push(this.expression()); while (this.acceptPunct(','));
          this.expectPunct(')');
          return { kind: 'call', name: parts.filter(Boolean).join('.').toUpperCase(), args, star };
        }
        return { kind: 'column', parts };
      }
    }
  }
}
