// Decoder for the binary stream frames of protocol version 1 (docs/protocol.md).
// Arrays are typed-array views over the received ArrayBuffer, never copies, so
// a caller that keeps a frame keeps its whole buffer alive. The exception is
// float16 deltas, which are decoded into new float32 arrays. Part frames are
// joined by PartAssembler before decoding.

export const MAGIC = "DVIZ";
export const PROTOCOL_VERSION = 1;
export const FRAME_SNAPSHOT = 1;
export const FRAME_STEPS = 2;
export const FRAME_PART = 3;
export const MASK_SCOPE_PER_STEP = 0;
export const MASK_SCOPE_PER_EXAMPLE = 1;
export const MASK_SCOPE_WEIGHTS = 2; // DropConnect: one bit per weight, no unit is dropped
export const DELTA_DTYPE_FLOAT32 = 0;
export const DELTA_DTYPE_FLOAT16 = 1; // each array is float16 values times a float32 scale

const COMMON_HEADER_BYTES = 8;
const SNAPSHOT_HEADER_BYTES = 24;
const STEPS_HEADER_BYTES = 32;
const PART_HEADER_BYTES = 32;
const STEP_RECORD_BYTES = 16;
const FLOAT32_BYTES = 4;
const FLOAT16_BYTES = 2;

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** Error for a binary message that does not follow the protocol. */
export class ProtocolError extends Error {
  constructor(message) {
    super(message);
    this.name = "ProtocolError";
  }
}

function alignTo4(offset) {
  return (offset + 3) & ~3;
}

function readUint64(view, offset) {
  const value = view.getBigUint64(offset, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ProtocolError(`Step number ${value} at byte ${offset} exceeds 2^53 - 1.`);
  }
  return Number(value);
}

function requireBytes(buffer, end, section) {
  if (end > buffer.byteLength) {
    throw new ProtocolError(
      `Frame is truncated: ${section} ends at byte ${end} but the message has ${buffer.byteLength} bytes.`,
    );
  }
}

/** Number of bytes in one mask row of a unit layer with `unitCount` units. */
export function maskRowBytes(unitCount) {
  return Math.ceil(unitCount / 8);
}

/** Returns whether unit `unit` is kept in a mask row that starts at `rowStart`. */
export function isUnitKept(maskBytes, unit, rowStart = 0) {
  return ((maskBytes[rowStart + (unit >> 3)] >> (unit & 7)) & 1) === 1;
}

/**
 * Returns whether weight W[l][source][destination] is kept in the DropConnect
 * mask block `maskBytes` of weight layer l, whose destination layer has
 * `destinationCount` units.
 */
export function isWeightKept(maskBytes, destinationCount, source, destination) {
  return isUnitKept(maskBytes, destination, source * maskRowBytes(destinationCount));
}

/** Returns the frame type of a binary message after checking magic and version. */
export function readFrameType(buffer) {
  requireBytes(buffer, COMMON_HEADER_BYTES, "the common header");
  const view = new DataView(buffer);
  const magic = String.fromCharCode(
    view.getUint8(0), view.getUint8(1), view.getUint8(2), view.getUint8(3),
  );
  if (magic !== MAGIC) {
    throw new ProtocolError(`Invalid magic ${JSON.stringify(magic)}; expected "${MAGIC}".`);
  }
  const version = view.getUint16(4, true);
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      `Unsupported protocol version ${version}; this page decodes version ${PROTOCOL_VERSION}. Reload the page.`,
    );
  }
  const frameType = view.getUint16(6, true);
  if (frameType !== FRAME_SNAPSHOT && frameType !== FRAME_STEPS && frameType !== FRAME_PART) {
    throw new ProtocolError(`Unknown frame type ${frameType}; expected 1 (snapshot), 2 (steps) or 3 (part).`);
  }
  return frameType;
}

/** Returns the value of the IEEE 754 binary16 number whose bits are `bits`. */
export function float16Value(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero or subnormal
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1024 + fraction) * 2 ** (exponent - 25);
}

let float16Table = null; // the float32 value of every binary16 bit pattern, built on first use

/**
 * Decodes `count` float16 values at byte `offset` of `buffer`, each times
 * `scale`, into a new Float32Array. Every float16 value is exact in a double
 * and `scale` is a power of two, so rounding the double product to float32
 * gives the float32 product the server's float32 arithmetic computes.
 */
export function decodeScaledFloat16(buffer, offset, count, scale) {
  if (float16Table === null) {
    float16Table = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) float16Table[bits] = float16Value(bits);
  }
  const bits = new Uint16Array(buffer, offset, count);
  const values = new Float32Array(count);
  for (let index = 0; index < count; index++) values[index] = float16Table[bits[index]] * scale;
  return values;
}

/**
 * Joins part frames (type 3) into the message they split. Parts of one
 * message arrive back to back and in order; anything else means data was
 * lost, so `add` throws a ProtocolError and discards the partial message.
 */
export class PartAssembler {
  constructor() {
    this.reset();
  }

  reset() {
    this.message = null; // Uint8Array of the whole message, filled part by part
    this.partCount = 0;
    this.nextIndex = 0;
    this.received = 0;
  }

  /** True while some but not all parts of a message have arrived. */
  get pending() {
    return this.message !== null;
  }

  /** Takes one part frame; returns the whole message's ArrayBuffer after its last part, else null. */
  add(buffer) {
    if (readFrameType(buffer) !== FRAME_PART) throw new ProtocolError("Expected a part frame (type 3).");
    try {
      return this.addPart(buffer);
    } catch (error) {
      this.reset();
      throw error;
    }
  }

  addPart(buffer) {
    requireBytes(buffer, PART_HEADER_BYTES, "the part header");
    const view = new DataView(buffer);
    const index = view.getUint32(8, true);
    const count = view.getUint32(12, true);
    const total = readUint64(view, 16);
    const offset = readUint64(view, 24);
    const payload = new Uint8Array(buffer, PART_HEADER_BYTES);

    if (index !== this.nextIndex) {
      throw new ProtocolError(`Part ${index} arrived; expected part ${this.nextIndex}. Parts were lost.`);
    }
    if (index === 0) {
      // every payload but the last has the first one's length, which bounds the total
      if (count < 1 || total > count * payload.length) {
        throw new ProtocolError(
          `Part frame has invalid part_count ${count} or message_bytes ${total} for a payload of ${payload.length} bytes.`,
        );
      }
      this.message = new Uint8Array(total);
      this.partCount = count;
    } else if (count !== this.partCount || total !== this.message.length) {
      throw new ProtocolError(
        `Part ${index} belongs to a message of ${count} parts and ${total} bytes, not to the one being joined.`,
      );
    }

    if (offset !== this.received || offset + payload.length > total) {
      throw new ProtocolError(`Part ${index} has offset ${offset}; expected ${this.received}.`);
    }
    this.message.set(payload, offset);
    this.received += payload.length;
    this.nextIndex++;
    if (this.nextIndex < count) return null;
    if (this.received !== total) {
      throw new ProtocolError(`Parts add up to ${this.received} bytes, but message_bytes is ${total}.`);
    }
    const whole = this.message.buffer;
    this.reset();
    return whole;
  }
}

/**
 * Decodes a snapshot frame.
 * `weights[l]` has n_l * n_{l+1} values, row-major (row = source unit);
 * `biases[l]` has n_{l+1} values.
 */
export function decodeSnapshot(buffer) {
  if (readFrameType(buffer) !== FRAME_SNAPSHOT) {
    throw new ProtocolError("Expected a snapshot frame (type 1).");
  }
  requireBytes(buffer, SNAPSHOT_HEADER_BYTES, "the snapshot header");
  const view = new DataView(buffer);
  const nextStep = readUint64(view, 8);
  const metaBytes = view.getUint32(16, true);

  requireBytes(buffer, SNAPSHOT_HEADER_BYTES + metaBytes, "the JSON metadata");
  const metaText = utf8Decoder.decode(new Uint8Array(buffer, SNAPSHOT_HEADER_BYTES, metaBytes));
  const meta = JSON.parse(metaText);
  const layerSizes = meta.layer_sizes;
  if (!Array.isArray(layerSizes) || layerSizes.length < 2) {
    throw new ProtocolError(`Snapshot metadata has invalid layer_sizes ${JSON.stringify(layerSizes)}.`);
  }

  // weight arrays follow the metadata, each weight layer as W[l] then b[l]
  let offset = alignTo4(SNAPSHOT_HEADER_BYTES + metaBytes);
  const weights = [];
  const biases = [];
  for (let l = 0; l + 1 < layerSizes.length; l++) {
    const weightCount = layerSizes[l] * layerSizes[l + 1];
    const biasCount = layerSizes[l + 1];
    requireBytes(buffer, offset + (weightCount + biasCount) * FLOAT32_BYTES, `weight layer ${l}`);
    weights.push(new Float32Array(buffer, offset, weightCount)); // (n_l, n_{l+1})
    offset += weightCount * FLOAT32_BYTES;
    biases.push(new Float32Array(buffer, offset, biasCount)); // (n_{l+1},)
    offset += biasCount * FLOAT32_BYTES;
  }
  if (offset !== buffer.byteLength) {
    throw new ProtocolError(`Snapshot has ${buffer.byteLength - offset} unexpected trailing bytes.`);
  }

  return { type: FRAME_SNAPSHOT, nextStep, meta, layerSizes, weights, biases };
}

/**
 * Returns the JSON metadata of a snapshot frame, or of the first part of a
 * split snapshot, whose payload starts with the snapshot's header and
 * metadata. Returns null for any other message. It reads only the metadata,
 * so the page can learn a snapshot's run state in arrival order while the
 * stream worker decodes the weights.
 */
export function peekSnapshotMeta(buffer) {
  let start = 0;
  const frameType = readFrameType(buffer);
  if (frameType === FRAME_PART) {
    requireBytes(buffer, PART_HEADER_BYTES, "the part header");
    if (new DataView(buffer).getUint32(8, true) !== 0) return null;
    start = PART_HEADER_BYTES;
    if (readFrameType(buffer.slice(start, start + COMMON_HEADER_BYTES)) !== FRAME_SNAPSHOT) return null;
  } else if (frameType !== FRAME_SNAPSHOT) {
    return null;
  }
  requireBytes(buffer, start + SNAPSHOT_HEADER_BYTES, "the snapshot header");
  const metaBytes = new DataView(buffer).getUint32(start + 16, true);
  requireBytes(buffer, start + SNAPSHOT_HEADER_BYTES + metaBytes, "the JSON metadata");
  return JSON.parse(utf8Decoder.decode(new Uint8Array(buffer, start + SNAPSHOT_HEADER_BYTES, metaBytes)));
}

/**
 * Decodes a steps frame; `layerSizes` comes from the snapshot.
 * Per covered step k: `epochs[k]`, `losses[k]`, `batchAccuracies[k]`, and
 * `masks[k][l]`, a Uint8Array of bit-packed rows. With unit masks (scope 0
 * or 1) it has `maskRows[k]` rows for unit layer l. With DropConnect masks
 * (scope 2) it has n_l rows of n_{l+1} bits for weight layer l, and
 * `maskRows[k]` is 0. `weightDeltas[l]` and `biasDeltas[l]` are summed over
 * the covered steps, or null when the frame leaves weight layer l out.
 */
export function decodeSteps(buffer, layerSizes) {
  if (readFrameType(buffer) !== FRAME_STEPS) {
    throw new ProtocolError("Expected a steps frame (type 2).");
  }
  requireBytes(buffer, STEPS_HEADER_BYTES, "the steps header");
  const view = new DataView(buffer);
  const firstStep = readUint64(view, 8);
  const stepCount = view.getUint32(16, true);
  const layerCount = view.getUint32(20, true);
  const deltaLayers = view.getUint32(24, true);
  const maskScope = view.getUint16(28, true);
  const deltaDtype = view.getUint16(30, true);

  if (stepCount < 1) {
    throw new ProtocolError("Steps frame covers 0 steps; expected at least 1.");
  }
  if (layerCount !== layerSizes.length - 1) {
    throw new ProtocolError(
      `Steps frame has ${layerCount} weight layers but the snapshot has ${layerSizes.length - 1}.`,
    );
  }
  if (maskScope !== MASK_SCOPE_PER_STEP && maskScope !== MASK_SCOPE_PER_EXAMPLE && maskScope !== MASK_SCOPE_WEIGHTS) {
    throw new ProtocolError(
      `Unknown mask_scope ${maskScope}; expected 0 (per step), 1 (per example) or 2 (DropConnect weights).`,
    );
  }
  if (deltaDtype !== DELTA_DTYPE_FLOAT32 && deltaDtype !== DELTA_DTYPE_FLOAT16) {
    throw new ProtocolError(`Unsupported delta_dtype ${deltaDtype}; expected 0 (float32) or 1 (float16).`);
  }

  // step table: u32 epoch, u32 mask_rows, f32 loss, f32 batch_accuracy per record
  const tableEnd = STEPS_HEADER_BYTES + stepCount * STEP_RECORD_BYTES;
  requireBytes(buffer, tableEnd, "the step table");
  const tableWords = new Uint32Array(buffer, STEPS_HEADER_BYTES, stepCount * 4);
  const tableFloats = new Float32Array(buffer, STEPS_HEADER_BYTES, stepCount * 4);
  const epochs = new Uint32Array(stepCount);
  const maskRows = new Uint32Array(stepCount);
  const losses = new Float32Array(stepCount);
  const batchAccuracies = new Float32Array(stepCount);
  for (let k = 0; k < stepCount; k++) {
    epochs[k] = tableWords[4 * k];
    maskRows[k] = tableWords[4 * k + 1];
    losses[k] = tableFloats[4 * k + 2];
    batchAccuracies[k] = tableFloats[4 * k + 3];
  }

  // masks: per step, per layer l = 0 .. L-1, a block padded to 4 bytes. A
  // DropConnect block has a row per source unit and a bit per destination unit.
  let offset = tableEnd;
  const masks = [];
  for (let k = 0; k < stepCount; k++) {
    const stepMasks = [];
    for (let l = 0; l < layerCount; l++) {
      const blockBytes = maskScope === MASK_SCOPE_WEIGHTS
        ? layerSizes[l] * maskRowBytes(layerSizes[l + 1])
        : maskRows[k] * maskRowBytes(layerSizes[l]);
      requireBytes(buffer, offset + blockBytes, `mask block of step ${firstStep + k}, layer ${l}`);
      stepMasks.push(new Uint8Array(buffer, offset, blockBytes));
      offset = alignTo4(offset + blockBytes);
    }
    masks.push(stepMasks);
  }

  // deltas: W[l] then b[l] for each weight layer present in delta_layers
  const deltas = deltaDtype === DELTA_DTYPE_FLOAT16
    ? readFloat16Deltas(buffer, offset, layerSizes, deltaLayers)
    : readFloat32Deltas(buffer, offset, layerSizes, deltaLayers);
  const { weightDeltas, biasDeltas } = deltas;
  offset = deltas.end;
  if (offset !== buffer.byteLength) {
    throw new ProtocolError(`Steps frame has ${buffer.byteLength - offset} unexpected trailing bytes.`);
  }

  return {
    type: FRAME_STEPS,
    firstStep,
    stepCount,
    maskScope,
    deltaDtype,
    epochs,
    maskRows,
    losses,
    batchAccuracies,
    masks,
    weightDeltas,
    biasDeltas,
  };
}

function isLayerPresent(deltaLayers, layer) {
  return (deltaLayers & (1 << layer)) !== 0;
}

/** Float32 deltas from `offset` on: W[l] then b[l] of each present layer, as views. */
function readFloat32Deltas(buffer, offset, layerSizes, deltaLayers) {
  const weightDeltas = [];
  const biasDeltas = [];
  for (let l = 0; l + 1 < layerSizes.length; l++) {
    if (!isLayerPresent(deltaLayers, l)) {
      weightDeltas.push(null);
      biasDeltas.push(null);
      continue;
    }
    const weightCount = layerSizes[l] * layerSizes[l + 1];
    const biasCount = layerSizes[l + 1];
    requireBytes(buffer, offset + (weightCount + biasCount) * FLOAT32_BYTES, `deltas of weight layer ${l}`);
    weightDeltas.push(new Float32Array(buffer, offset, weightCount)); // (n_l, n_{l+1})
    offset += weightCount * FLOAT32_BYTES;
    biasDeltas.push(new Float32Array(buffer, offset, biasCount)); // (n_{l+1},)
    offset += biasCount * FLOAT32_BYTES;
  }
  return { weightDeltas, biasDeltas, end: offset };
}

/**
 * Float16 deltas from `offset` on: the scale table (two float32 scales per
 * present layer), then W[l] and b[l] of each present layer as float16, each
 * array padded to 4 bytes. Returns new float32 arrays.
 */
function readFloat16Deltas(buffer, offset, layerSizes, deltaLayers) {
  const present = [];
  for (let l = 0; l + 1 < layerSizes.length; l++) if (isLayerPresent(deltaLayers, l)) present.push(l);
  requireBytes(buffer, offset + 2 * present.length * FLOAT32_BYTES, "the float16 scale table");
  const scales = new Float32Array(buffer, offset, 2 * present.length);
  offset += 2 * present.length * FLOAT32_BYTES;

  const weightDeltas = layerSizes.slice(1).map(() => null);
  const biasDeltas = layerSizes.slice(1).map(() => null);
  present.forEach((l, position) => {
    const weightCount = layerSizes[l] * layerSizes[l + 1];
    const biasCount = layerSizes[l + 1];
    requireBytes(buffer, offset + weightCount * FLOAT16_BYTES, `float16 deltas of W[${l}]`);
    weightDeltas[l] = decodeScaledFloat16(buffer, offset, weightCount, scales[2 * position]); // (n_l, n_{l+1})
    offset = alignTo4(offset + weightCount * FLOAT16_BYTES);
    requireBytes(buffer, offset + biasCount * FLOAT16_BYTES, `float16 deltas of b[${l}]`);
    biasDeltas[l] = decodeScaledFloat16(buffer, offset, biasCount, scales[2 * position + 1]); // (n_{l+1},)
    offset = alignTo4(offset + biasCount * FLOAT16_BYTES);
  });
  return { weightDeltas, biasDeltas, end: offset };
}
