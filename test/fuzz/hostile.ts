/**
 * Building blocks for the fuzz tests of everything that arrives from the network (the Durable Object's
 * sockets, the sender's signaling): hostile JSON values and mutations of valid protocol messages.
 * Pure fast-check and Web APIs, so it runs both in Node (test/sender) and in workerd (test/worker).
 */
import fc from 'fast-check';
import { MAX_MESSAGE_BYTES } from '../../protocol/index.js';

/**
 * Goes into every hostile string. It cannot occur in anything valid ('~' is in no id pattern), so a reply
 * or log line that contains it echoed attacker-controlled input.
 */
export const MARKER = 'Zq7~MRK';

/** Plain JSON: what a mutation works on. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const encoder = new TextEncoder();
export const utf8Length = (text: string): number => encoder.encode(text).byteLength;

const anyText = fc.oneof(
  fc.string({ maxLength: 16 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
);

/** A random string that carries MARKER. */
export const marked: fc.Arbitrary<string> = fc.tuple(anyText, anyText).map(([a, b]) => `${a}${MARKER}${b}`);

const TRICKY_STRINGS: readonly string[] = [
  '',
  ' ',
  '\u0000',
  `\u0000${MARKER}`,
  `\u202e${MARKER}`, // right-to-left override
  `👩‍👩‍👧‍👦${MARKER}`, // one grapheme, many code points
  `e\u0301${MARKER}`, // combining accent
  `\ud800${MARKER}`, // lone surrogate
  `\uffff\ufeff${MARKER}`,
  `${MARKER}\r\n\r\n`,
  `<script>${MARKER}</script>`,
  `%s%n%x${MARKER}`,
  `../../${MARKER}`,
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'main',
  'video',
  'null',
  'NaN',
  '{}',
  '[]',
];

/** Strings at and just over the protocol's length limits (ids 32/64, reason 200, label 64, candidate 1024, SDP 48 KiB). */
const LIMIT_STRINGS: readonly string[] = [31, 32, 33, 63, 64, 65, 200, 201, 256, 257, 1024, 1025, 48 * 1024, 48 * 1024 + 1].map((n) =>
  'x'.repeat(n),
);

/** A value to put where a field should be: wrong types, edge numbers, markers, limits, nesting. */
export const hostileValue: fc.Arbitrary<Json> = fc.oneof(
  { weight: 6, arbitrary: marked },
  { weight: 3, arbitrary: fc.constantFrom(...TRICKY_STRINGS) },
  { weight: 1, arbitrary: fc.constantFrom(...LIMIT_STRINGS) },
  { weight: 3, arbitrary: fc.constantFrom<Json>(null, true, false, 0, -1, 1.5, 1e308, 2 ** 53, -(2 ** 31), 8193, 241, 0.0001) },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double().map((n) => (Number.isFinite(n) ? n : 0)) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json> },
  { weight: 1, arbitrary: fc.array(marked, { maxLength: 4 }) },
  {
    weight: 1,
    arbitrary: fc
      .array(fc.tuple(fc.oneof(marked, fc.constantFrom('__proto__', 'constructor', 'prototype', 'type')), marked), { maxLength: 3 })
      .map((entries) => objectOf(entries)),
  },
);

/** An object with these own properties, `__proto__` included (an own key, as JSON.parse makes it). */
export function objectOf(entries: readonly (readonly [string, Json])[]): { [key: string]: Json } {
  const object: { [key: string]: Json } = {};
  for (const [key, value] of entries) setOwn(object, key, value);
  return object;
}

function setOwn(object: { [key: string]: Json }, key: string, value: Json): void {
  Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
}

type Mutation =
  | { kind: 'drop'; at: number }
  | { kind: 'set'; at: number; value: Json }
  | { kind: 'add'; at: number; key: string; value: Json }
  | { kind: 'retype'; type: Json }
  | { kind: 'nest'; at: number; depth: number; inArray: boolean }
  | { kind: 'wrap'; how: 'array' | 'object' | 'string' };

type TextMutation =
  | { kind: 'none' }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'prefix'; text: string };

function mutationArb(types: readonly string[]): fc.Arbitrary<Mutation> {
  const index = fc.nat({ max: 1_000 });
  return fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('drop' as const), at: index }) },
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('set' as const), at: index, value: hostileValue }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('add' as const),
        at: index,
        key: fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'type', 'viewerId', 'callId', 'sdp'), marked),
        value: hostileValue,
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('retype' as const),
        type: fc.oneof(
          fc.constantFrom<Json>(...types),
          fc.constantFrom(...types).chain((type) => fc.mixedCase(fc.constant(type))),
          hostileValue,
        ),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('nest' as const), at: index, depth: fc.integer({ min: 1, max: 64 }), inArray: fc.boolean() }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('wrap' as const), how: fc.constantFrom('array' as const, 'object' as const, 'string' as const) }) },
  );
}

const textMutationArb: fc.Arbitrary<TextMutation> = fc.oneof(
  { weight: 8, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat({ max: 400 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('insert' as const),
      at: fc.nat({ max: 400 }),
      text: fc.oneof(anyText, fc.constantFrom(',', '"', '\\', '}', ']', '\u0000', `"__proto__":{"polluted":"${MARKER}"},`, `"type":"${MARKER}",`)),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('prefix' as const),
      text: fc.constantFrom('\ufeff', ' \n\t', `{"__proto__":{"polluted":"${MARKER}"},"x":`, '[', `"${MARKER}"`),
    }),
  },
);

/** Every place in a JSON value that can be deleted or replaced, as (parent, key) pairs, in a stable order. */
function slots(root: Json): [parent: { [key: string]: Json } | Json[], key: string | number][] {
  const found: [{ [key: string]: Json } | Json[], string | number][] = [];
  const visit = (node: Json): void => {
    if (Array.isArray(node)) {
      node.forEach((child, i) => {
        found.push([node, i]);
        visit(child);
      });
    } else if (node !== null && typeof node === 'object') {
      for (const key of Object.keys(node)) {
        found.push([node, key]);
        visit(node[key]!);
      }
    }
  };
  visit(root);
  return found;
}

function objectsIn(root: Json): { [key: string]: Json }[] {
  const objects: { [key: string]: Json }[] = [];
  const visit = (node: Json): void => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node !== null && typeof node === 'object') {
      objects.push(node);
      Object.values(node).forEach(visit);
    }
  };
  visit(root);
  return objects;
}

function nested(value: Json, depth: number, inArray: boolean): Json {
  let node = value;
  for (let i = 0; i < depth; i++) node = inArray ? [node] : { a: node };
  return node;
}

function applyMutation(root: Json, mutation: Mutation): Json {
  switch (mutation.kind) {
    case 'drop': {
      const all = slots(root);
      const slot = all[mutation.at % Math.max(all.length, 1)];
      if (!slot) return root;
      const [parent, key] = slot;
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key as string];
      return root;
    }
    case 'set': {
      const all = slots(root);
      const slot = all[mutation.at % Math.max(all.length, 1)];
      if (!slot) return mutation.value;
      const [parent, key] = slot;
      if (Array.isArray(parent)) parent[key as number] = mutation.value;
      else setOwn(parent, key as string, mutation.value);
      return root;
    }
    case 'add': {
      const objects = objectsIn(root);
      const target = objects[mutation.at % Math.max(objects.length, 1)];
      if (target) setOwn(target, mutation.key, mutation.value);
      return root;
    }
    case 'retype':
      if (root !== null && typeof root === 'object' && !Array.isArray(root)) setOwn(root, 'type', mutation.type);
      return root;
    case 'nest': {
      const all = slots(root);
      const slot = all[mutation.at % Math.max(all.length, 1)];
      if (!slot) return nested(root, mutation.depth, mutation.inArray);
      const [parent, key] = slot;
      if (Array.isArray(parent)) parent[key as number] = nested(parent[key as number]!, mutation.depth, mutation.inArray);
      else setOwn(parent, key as string, nested(parent[key as string]!, mutation.depth, mutation.inArray));
      return root;
    }
    case 'wrap':
      if (mutation.how === 'array') return [root];
      if (mutation.how === 'object') return { message: root, marker: MARKER };
      return JSON.stringify(root);
  }
}

function applyTextMutation(text: string, mutation: TextMutation): string {
  switch (mutation.kind) {
    case 'none':
      return text;
    case 'truncate':
      return text.slice(0, mutation.at % (text.length + 1));
    case 'insert': {
      const at = mutation.at % (text.length + 1);
      return text.slice(0, at) + mutation.text + text.slice(at);
    }
    case 'prefix':
      return mutation.text + text;
  }
}

/**
 * JSON text of a valid message after 1–3 structural mutations (drop/replace/add fields anywhere, swap the
 * type for another message's, nest, wrap) and maybe a textual one (truncate, insert, prefix).
 * `types` are the message types to swap in (the other role's, the server's, …).
 */
export function mutatedMessage(valid: fc.Arbitrary<Json>, types: readonly string[]): fc.Arbitrary<string> {
  return fc
    .tuple(valid, fc.array(mutationArb(types), { minLength: 1, maxLength: 3 }), textMutationArb)
    .map(([message, mutations, textMutation]) => {
      let root: Json = JSON.parse(JSON.stringify(message)) as Json;
      for (const mutation of mutations) root = applyMutation(root, mutation);
      return applyTextMutation(JSON.stringify(root), textMutation);
    });
}

/**
 * A valid message padded to exactly MAX_MESSAGE_BYTES + delta UTF-8 bytes, in one of its string fields
 * or an extra one, with 1–4-byte characters (so counting UTF-16 units instead of bytes shows).
 */
export function sizedMessage(valid: fc.Arbitrary<{ [key: string]: Json }>, deltas: readonly number[]): fc.Arbitrary<string> {
  return fc
    .tuple(valid, fc.constantFrom(...deltas), fc.constantFrom('x', 'é', '€', '😀'), fc.nat())
    .map(([message, delta, char, pick]) => {
      const stringFields = Object.keys(message).filter((key) => key !== 'type' && typeof message[key] === 'string');
      const field = [...stringFields, 'pad'][pick % (stringFields.length + 1)]!;
      const target = MAX_MESSAGE_BYTES + delta;
      const base = utf8Length(JSON.stringify({ ...message, [field]: MARKER }));
      const need = Math.max(0, target - base);
      const charBytes = utf8Length(char);
      const padding = char.repeat(Math.floor(need / charBytes)) + 'x'.repeat(need % charBytes);
      return JSON.stringify({ ...message, [field]: MARKER + padding });
    });
}

/** A message of type `type` whose field holds a deeply nested array or object, built as text (no recursion). */
export function deeplyNested(types: readonly string[]): fc.Arbitrary<string> {
  return fc
    .tuple(fc.constantFrom(...types), fc.integer({ min: 50, max: 12_000 }), fc.boolean(), fc.constantFrom('cameraId', 'cameras', 'sdp', 'candidate', 'viewers', 'x'))
    .map(([type, depth, inArray, field]) => {
      const nest = inArray ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + `"${MARKER}"` + '}'.repeat(depth);
      return `{"type":${JSON.stringify(type)},${JSON.stringify(field)}:${nest},"m":"${MARKER}"}`;
    });
}

/** Text that is not a protocol message at all: random strings, JSON values, broken JSON. */
export const randomText: fc.Arbitrary<string> = fc.oneof(
  marked,
  fc.string({ unit: 'binary', maxLength: 200 }).map((text) => text + MARKER),
  fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)),
  fc.json({ maxDepth: 3 }).map((text) => text.slice(0, Math.max(0, text.length - 1)) + MARKER),
  fc.constantFrom('', ' ', 'null', 'true', '0', '""', '[]', '{}', '{"type":null}', `{"type":"${MARKER}"}`, '{"type":{}}', '{"type":["watch"]}', '{"type":"watch"', '{"type":"watch"}}', '\u0000', 'undefined', 'NaN'),
);
