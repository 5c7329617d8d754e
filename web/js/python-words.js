// What recorder/verify.py says, said the same way in the browser: Python's strict JSON reading
// (recorder/canonical.py), its UTF-8 and base64 decoding, datetime.fromisoformat's checks and
// repr(), so that a failure reads the same in takan verify and in the page. A CLASSIC script:
// it defines globalThis.TakanPython and nothing else. Pure: no I/O, no DOM.

(function (root) {
  'use strict';

  const MAX_SAFE = Number.MAX_SAFE_INTEGER;
  const MAX_DEPTH = 64;

  // A failure of the kind Python raises as ValueError: its text is what str(exc) gives.
  class PyValueError extends Error {}

  // An integer beyond ±(2**53 - 1): kept as its digits until the canonical check refuses it.
  class BigInteger {
    constructor(text) {
      this.text = text;
    }
  }

  // ---------------------------------------------------------------- repr and str

  const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

  function reprString(text) {
    const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
    let out = quote;
    for (const ch of text) {
      const code = ch.codePointAt(0);
      if (ch === '\\') out += '\\\\';
      else if (ch === quote) out += `\\${quote}`;
      else if (ch === '\t') out += '\\t';
      else if (ch === '\n') out += '\\n';
      else if (ch === '\r') out += '\\r';
      else if (ch !== ' ' && UNPRINTABLE.test(ch)) {
        if (code < 0x100) out += `\\x${code.toString(16).padStart(2, '0')}`;
        else if (code < 0x10000) out += `\\u${code.toString(16).padStart(4, '0')}`;
        else out += `\\U${code.toString(16).padStart(8, '0')}`;
      } else out += ch;
    }
    return out + quote;
  }

  // repr() of a parsed JSON value, as Python prints it.
  function repr(value) {
    if (value === null || value === undefined) return 'None';
    if (value === true) return 'True';
    if (value === false) return 'False';
    if (typeof value === 'number') return String(value);
    if (value instanceof BigInteger) return value.text.replace(/^-?0*(?=\d)/, (m) => (m.startsWith('-') ? '-' : ''));
    if (typeof value === 'string') return reprString(value);
    if (Array.isArray(value)) return `[${value.map(repr).join(', ')}]`;
    return `{${Object.keys(value)
      .map((name) => `${reprString(name)}: ${repr(value[name])}`)
      .join(', ')}}`;
  }

  // What an f-string prints of a value: the string itself, else its repr.
  function str(value) {
    return typeof value === 'string' ? value : repr(value);
  }

  function typeName(value) {
    if (value === null || value === undefined) return 'NoneType';
    if (typeof value === 'boolean') return 'bool';
    if (typeof value === 'number' || value instanceof BigInteger) return 'int';
    if (typeof value === 'string') return 'str';
    if (Array.isArray(value)) return 'list';
    return 'dict';
  }

  // value[name] as Python evaluates it on parsed JSON: the item, or the error str(exc) gives.
  function subscript(value, name) {
    const type = typeName(value);
    if (type === 'dict') {
      if (!Object.prototype.hasOwnProperty.call(value, name)) throw new PyValueError(reprString(name));
      return value[name];
    }
    if (type === 'list') throw new PyValueError('list indices must be integers or slices, not str');
    if (type === 'str') throw new PyValueError("string indices must be integers, not 'str'");
    throw new PyValueError(`'${type}' object is not subscriptable`);
  }

  const isDict = (value) => typeName(value) === 'dict';
  const isInt = (value) => typeof value === 'number' && Number.isInteger(value);
  const has = (obj, name) => Object.prototype.hasOwnProperty.call(obj, name);

  // sorted() of a list of strings, printed: "['a', 'b']".
  function reprSorted(names) {
    return repr([...names].sort(comparePoints));
  }

  // Python's str order: by code point (JavaScript's default sort is by UTF-16 unit).
  function comparePoints(a, b) {
    const x = [...a];
    const y = [...b];
    for (let i = 0; i < Math.min(x.length, y.length); i += 1) {
      const d = x[i].codePointAt(0) - y[i].codePointAt(0);
      if (d) return d;
    }
    return x.length - y.length;
  }

  // ---------------------------------------------------------------- UTF-8, as bytes.decode()

  function decodeUtf8(bytes) {
    let i = 0;
    const n = bytes.length;
    const fail = (reason) => {
      throw new PyValueError(`not UTF-8: ${reason} at byte ${i}`);
    };
    while (i < n) {
      const b = bytes[i];
      if (b < 0x80) {
        i += 1;
        continue;
      }
      let need;
      let lo = 0x80;
      let hi = 0xbf;
      if (b >= 0xc2 && b <= 0xdf) need = 1;
      else if (b >= 0xe0 && b <= 0xef) {
        need = 2;
        if (b === 0xe0) lo = 0xa0;
        if (b === 0xed) hi = 0x9f;
      } else if (b >= 0xf0 && b <= 0xf4) {
        need = 3;
        if (b === 0xf0) lo = 0x90;
        if (b === 0xf4) hi = 0x8f;
      } else fail('invalid start byte');
      for (let k = 1; k <= need; k += 1) {
        if (i + k >= n) fail('unexpected end of data');
        const c = bytes[i + k];
        const [min, max] = k === 1 ? [lo, hi] : [0x80, 0xbf];
        if (c < min || c > max) fail('invalid continuation byte');
      }
      i += need + 1;
    }
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
  }

  // ---------------------------------------------------------------- JSON, as parse_json()

  // json.loads with recorder/canonical.py's hooks: the same errors, at the same offsets (in
  // characters), in the same order (a float or NaN when it is read, a duplicate name when its
  // object closes).
  function parseJson(bytes) {
    const text = decodeUtf8(bytes);
    const chars = Array.from(text);
    let pos = 0;
    const jsonError = (msg, at) => new PyValueError(`not JSON: ${msg} at offset ${at}`);
    const ws = () => {
      while (pos < chars.length && ' \t\n\r'.includes(chars[pos])) pos += 1;
    };
    const startsWith = (word) => chars.slice(pos, pos + word.length).join('') === word;

    function value() {
      const ch = chars[pos];
      if (ch === '"') return string();
      if (ch === '{') return object();
      if (ch === '[') return array();
      if (ch === 'n' && startsWith('null')) {
        pos += 4;
        return null;
      }
      if (ch === 't' && startsWith('true')) {
        pos += 4;
        return true;
      }
      if (ch === 'f' && startsWith('false')) {
        pos += 5;
        return false;
      }
      if (ch === 'N' && startsWith('NaN')) throw new PyValueError('NaN is not JSON');
      if (ch === 'I' && startsWith('Infinity')) throw new PyValueError('Infinity is not JSON');
      if (ch === '-' && chars.slice(pos, pos + 9).join('') === '-Infinity') throw new PyValueError('-Infinity is not JSON');
      const match = /^(-?(?:0|[1-9][0-9]*))(\.[0-9]+)?([eE][-+]?[0-9]+)?/.exec(chars.slice(pos, pos + 400).join(''));
      if (!match || !/^-?[0-9]/.test(match[0])) throw jsonError('Expecting value', pos);
      pos += match[0].length;
      if (match[2] || match[3]) throw new PyValueError(`number ${match[0]} is not an integer`);
      const number = Number(match[1]);
      if (Math.abs(number) > MAX_SAFE) return new BigInteger(match[1]);
      return Object.is(number, -0) ? 0 : number;
    }

    function string() {
      const start = pos;
      pos += 1;
      let out = '';
      for (;;) {
        if (pos >= chars.length) throw jsonError('Unterminated string starting at', start);
        const ch = chars[pos];
        if (ch === '"') {
          pos += 1;
          return out;
        }
        if (ch.codePointAt(0) < 0x20) throw jsonError('Invalid control character at', pos);
        if (ch !== '\\') {
          out += ch;
          pos += 1;
          continue;
        }
        const esc = chars[pos + 1];
        if (esc === undefined) throw jsonError('Unterminated string starting at', start);
        const simple = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' }[esc];
        if (simple !== undefined) {
          out += simple;
          pos += 2;
          continue;
        }
        if (esc !== 'u') throw jsonError('Invalid \\escape', pos);
        const unit = (at) => {
          const hex = chars.slice(at, at + 4).join('');
          return /^[0-9a-fA-F]{4}$/.test(hex) ? Number.parseInt(hex, 16) : null;
        };
        let code = unit(pos + 2);
        if (code === null) throw jsonError('Invalid \\uXXXX escape', pos + 1);
        pos += 6;
        if (code >= 0xd800 && code <= 0xdbff && chars[pos] === '\\' && chars[pos + 1] === 'u') {
          const low = unit(pos + 2);
          if (low === null) throw jsonError('Invalid \\uXXXX escape', pos + 1);
          if (low >= 0xdc00 && low <= 0xdfff) {
            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
            pos += 6;
          }
        }
        out += String.fromCodePoint(code);
      }
    }

    function object() {
      pos += 1;
      const pairs = [];
      ws();
      if (chars[pos] === '}') {
        pos += 1;
        return unique(pairs);
      }
      for (;;) {
        if (chars[pos] !== '"') throw jsonError('Expecting property name enclosed in double quotes', pos);
        const name = string();
        ws();
        if (chars[pos] !== ':') throw jsonError("Expecting ':' delimiter", pos);
        pos += 1;
        ws();
        if (pos >= chars.length) throw jsonError('Expecting value', pos);
        pairs.push([name, value()]);
        ws();
        if (chars[pos] === '}') {
          pos += 1;
          return unique(pairs);
        }
        if (chars[pos] !== ',') throw jsonError("Expecting ',' delimiter", pos);
        pos += 1;
        ws();
      }
    }

    function unique(pairs) {
      const out = {};
      for (const [name, item] of pairs) {
        if (has(out, name)) throw new PyValueError(`duplicate object key ${reprString(name)}`);
        Object.defineProperty(out, name, { value: item, enumerable: true, writable: true, configurable: true });
      }
      return out;
    }

    function array() {
      pos += 1;
      const out = [];
      ws();
      if (chars[pos] === ']') {
        pos += 1;
        return out;
      }
      for (;;) {
        if (pos >= chars.length) throw jsonError('Expecting value', pos);
        out.push(value());
        ws();
        if (chars[pos] === ']') {
          pos += 1;
          return out;
        }
        if (chars[pos] !== ',') throw jsonError("Expecting ',' delimiter", pos);
        pos += 1;
        ws();
      }
    }

    if (chars[0] === '\ufeff') throw jsonError('Unexpected UTF-8 BOM (decode using utf-8-sig)', 0);
    ws();
    if (pos >= chars.length) throw jsonError('Expecting value', pos);
    const result = value();
    ws();
    if (pos !== chars.length) throw jsonError('Extra data', pos);
    return result;
  }

  // canonical_json()'s refusals, in its order: depth, integers, names (floats never parse).
  function checkCanonical(value, depth = 0) {
    if (depth > MAX_DEPTH) throw new PyValueError(`nested deeper than ${MAX_DEPTH} levels`);
    if (value instanceof BigInteger) throw new PyValueError(`integer ${repr(value)} is outside ±(2**53 - 1)`);
    if (Array.isArray(value)) {
      for (const item of value) checkCanonical(item, depth + 1);
    } else if (isDict(value)) {
      for (const name of Object.keys(value)) {
        if (!/^[\x00-\x7f]*$/.test(name)) throw new PyValueError(`object key ${reprString(name)} is not ASCII`);
        checkCanonical(value[name], depth + 1);
      }
    } else if (typeof value === 'string' && /[\ud800-\udfff]/.test(value.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''))) {
      throw new PyValueError('string contains a lone surrogate, which is not valid UTF-8');
    }
  }

  // ---------------------------------------------------------------- base64, as b64decode(validate=True)

  function b64decode(text) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new PyValueError('Only base64 data is allowed');
    const data = text.replace(/=+$/, '');
    const pads = text.length - data.length;
    if (data.length % 4 === 1) {
      throw new PyValueError(`Invalid base64-encoded string: number of data characters (${data.length}) cannot be 1 more than a multiple of 4`);
    }
    const need = (4 - (data.length % 4)) % 4;
    if (pads < need) throw new PyValueError('Incorrect padding');
    const binary = atob(data + '='.repeat(need));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  }

  function b64encode(bytes) {
    let binary = '';
    for (const b of bytes) binary += String.fromCharCode(b);
    return btoa(binary);
  }

  // ---------------------------------------------------------------- UTC times, as parse_utc()

  const UTC = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?Z$/;

  // A sortable form of a UTC time (microseconds), or the ValueError parse_utc raises.
  function parseUtc(text) {
    const match = typeof text === 'string' ? UTC.exec(text) : null;
    if (!match) throw new PyValueError(`time ${repr(text)} is not UTC ISO 8601 like 2026-01-31T08:00:00.000Z`);
    const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number);
    if (year < 1) throw new PyValueError(`year ${year} is out of range`);
    if (month < 1 || month > 12) throw new PyValueError('month must be in 1..12');
    const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
    const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
    if (day < 1 || day > days) throw new PyValueError('day is out of range for month');
    if (hour > 23) throw new PyValueError('hour must be in 0..23');
    if (minute > 59) throw new PyValueError('minute must be in 0..59');
    if (second > 59) throw new PyValueError('second must be in 0..59');
    return `${match.slice(1, 4).join('-')}T${match.slice(4, 7).join(':')}.${(match[7] || '').padEnd(6, '0')}`;
  }

  root.TakanPython = {
    PyValueError,
    BigInteger,
    repr,
    reprString,
    reprSorted,
    str,
    typeName,
    subscript,
    isDict,
    isInt,
    has,
    comparePoints,
    decodeUtf8,
    parseJson,
    checkCanonical,
    b64decode,
    b64encode,
    parseUtc,
  };
})(globalThis);
