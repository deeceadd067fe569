// Reader for NumPy `.npz` archives: a ZIP file of `.npy` arrays. It handles the
// entries `np.savez` writes (stored, with ZIP64 extra fields) and
// `np.savez_compressed` writes (deflate, through the browser's
// DecompressionStream). Only C-order, little-endian, non-structured arrays load.

const END_OF_DIRECTORY_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_END_OF_DIRECTORY_SIGNATURE = 0x06064b50;
const DIRECTORY_ENTRY_SIGNATURE = 0x02014b50;
const LOCAL_HEADER_SIGNATURE = 0x04034b50;
const ZIP64_EXTRA_ID = 0x0001;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;
const END_OF_DIRECTORY_BYTES = 22;
const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;
const NPY_MAGIC = "\x93NUMPY";

/** Error for an archive or array this reader cannot decode; the message names the entry. */
export class NpzError extends Error {
  constructor(message) {
    super(message);
    this.name = "NpzError";
  }
}

function readU64(view, offset) {
  const value = view.getBigUint64(offset, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new NpzError(`ZIP offset ${value} is too large.`);
  return Number(value);
}

function findEndOfDirectory(view) {
  // The record is 22 bytes, followed by a comment of at most 65,535 bytes.
  const last = view.byteLength - END_OF_DIRECTORY_BYTES;
  const first = Math.max(0, last - U16_MAX);
  for (let offset = last; offset >= first; offset--) {
    if (view.getUint32(offset, true) === END_OF_DIRECTORY_SIGNATURE) return offset;
  }
  throw new NpzError("Not a ZIP archive: the end-of-central-directory record is missing.");
}

/** Returns the entry count and the central directory's offset, from the ZIP64 record when present. */
function readDirectoryLocation(view) {
  const end = findEndOfDirectory(view);
  let count = view.getUint16(end + 10, true);
  let offset = view.getUint32(end + 16, true);
  const locator = end - 20;
  if ((count === U16_MAX || offset === U32_MAX) && locator >= 0
      && view.getUint32(locator, true) === ZIP64_LOCATOR_SIGNATURE) {
    const zip64End = readU64(view, locator + 8);
    if (view.getUint32(zip64End, true) !== ZIP64_END_OF_DIRECTORY_SIGNATURE) {
      throw new NpzError("Invalid ZIP64 end-of-central-directory record.");
    }
    count = readU64(view, zip64End + 32);
    offset = readU64(view, zip64End + 48);
  }
  return { count, offset };
}

/** Replaces 0xFFFFFFFF sizes and offsets by the 64-bit values of the ZIP64 extra field. */
function applyZip64Extra(view, extraStart, extraEnd, entry) {
  let offset = extraStart;
  while (offset + 4 <= extraEnd) {
    const id = view.getUint16(offset, true);
    const size = view.getUint16(offset + 2, true);
    if (id === ZIP64_EXTRA_ID) {
      let field = offset + 4;
      for (const key of ["size", "compressedSize", "localOffset"]) {
        if (entry[key] === U32_MAX) {
          entry[key] = readU64(view, field);
          field += 8;
        }
      }
      return;
    }
    offset += 4 + size;
  }
}

function readDirectory(view) {
  const { count, offset: start } = readDirectoryLocation(view);
  const decoder = new TextDecoder();
  const entries = [];
  let offset = start;
  for (let index = 0; index < count; index++) {
    if (view.getUint32(offset, true) !== DIRECTORY_ENTRY_SIGNATURE) {
      throw new NpzError(`Invalid ZIP central directory entry ${index} at byte ${offset}.`);
    }
    const nameLength = view.getUint16(offset + 28, true);
    const extraLength = view.getUint16(offset + 30, true);
    const commentLength = view.getUint16(offset + 32, true);
    const entry = {
      name: decoder.decode(new Uint8Array(view.buffer, view.byteOffset + offset + 46, nameLength)),
      method: view.getUint16(offset + 10, true),
      compressedSize: view.getUint32(offset + 20, true),
      size: view.getUint32(offset + 24, true),
      localOffset: view.getUint32(offset + 42, true),
    };
    const extraStart = offset + 46 + nameLength;
    applyZip64Extra(view, extraStart, extraStart + extraLength, entry);
    entries.push(entry);
    offset = extraStart + extraLength + commentLength;
  }
  return entries;
}

async function readEntryBytes(view, entry) {
  const local = entry.localOffset;
  if (view.getUint32(local, true) !== LOCAL_HEADER_SIGNATURE) {
    throw new NpzError(`Invalid ZIP local header of ${entry.name}.`);
  }
  // the local header's own name and extra lengths, which may differ from the directory's
  const dataStart = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
  const stored = new Uint8Array(view.buffer, view.byteOffset + dataStart, entry.compressedSize);
  if (entry.method === METHOD_STORED) return stored;
  if (entry.method === METHOD_DEFLATE) {
    const stream = new Blob([stored]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }
  throw new NpzError(`${entry.name} uses ZIP compression method ${entry.method}; only stored and deflate are supported.`);
}

/** Element readers by dtype without its byte-order character, such as "f4". */
const NUMERIC_TYPES = {
  f4: Float32Array,
  f8: Float64Array,
  i1: Int8Array,
  u1: Uint8Array,
  b1: Uint8Array,
  i2: Int16Array,
  u2: Uint16Array,
  i4: Int32Array,
  u4: Uint32Array,
  i8: BigInt64Array,
  u8: BigUint64Array,
};

function parseHeader(text, name) {
  const descr = /'descr':\s*'([^']+)'/.exec(text);
  const fortran = /'fortran_order':\s*(True|False)/.exec(text);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(text);
  if (descr === null || fortran === null || shape === null) {
    throw new NpzError(`${name}: unsupported .npy header ${text.trim()}; structured dtypes cannot load.`);
  }
  const dims = shape[1].split(",").map((part) => part.trim()).filter((part) => part !== "").map(Number);
  if (fortran[1] === "True" && dims.length > 1) {
    throw new NpzError(`${name} is stored in Fortran order; only C order is supported.`);
  }
  return { descr: descr[1], shape: dims };
}

function decodeStrings(bytes, count, width, isUnicode) {
  const values = [];
  const itemBytes = isUnicode ? width * 4 : width;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let item = 0; item < count; item++) {
    let text = "";
    for (let index = 0; index < width; index++) {
      const offset = item * itemBytes + (isUnicode ? index * 4 : index);
      const code = isUnicode ? view.getUint32(offset, true) : view.getUint8(offset);
      if (code === 0) break;
      text += String.fromCodePoint(code);
    }
    values.push(text);
  }
  return values;
}

/**
 * Parses one `.npy` file. Returns { dtype, shape, data }: data is a typed array
 * in C order, except that 64-bit integers become a Float64Array (exact up to
 * 2^53) and strings ("U" and "S" dtypes) become an array of strings.
 */
export function parseNpy(bytes, name = "array") {
  const magic = String.fromCharCode(...bytes.subarray(0, 6));
  if (magic !== NPY_MAGIC) throw new NpzError(`${name} is not a .npy file.`);
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const headerText = new TextDecoder(major >= 3 ? "utf-8" : "latin1").decode(
    bytes.subarray(headerStart, headerStart + headerLength),
  );
  const { descr, shape } = parseHeader(headerText, name);
  const count = shape.reduce((product, size) => product * size, 1);
  const dataStart = headerStart + headerLength;

  const order = descr[0];
  const kind = descr.slice(1);
  if (order === ">") throw new NpzError(`${name} is big-endian (${descr}); only little-endian arrays load.`);
  const text = /^([US])(\d+)$/.exec(kind);
  if (text !== null) {
    const width = Number(text[2]);
    const data = decodeStrings(bytes.subarray(dataStart), count, width, text[1] === "U");
    return { dtype: descr, shape, data };
  }
  const ArrayType = NUMERIC_TYPES[kind];
  if (ArrayType === undefined) throw new NpzError(`${name} has dtype ${descr}, which this reader does not support.`);
  // copy, because a typed array view needs an offset aligned to its element size
  const byteLength = count * ArrayType.BYTES_PER_ELEMENT;
  const copy = bytes.slice(dataStart, dataStart + byteLength).buffer;
  let data = new ArrayType(copy);
  if (ArrayType === BigInt64Array || ArrayType === BigUint64Array) data = Float64Array.from(data, Number);
  return { dtype: descr, shape, data };
}

/** Reads every array of an `.npz` archive into an object keyed by name without ".npy". */
export async function readNpz(buffer) {
  const view = new DataView(buffer);
  const arrays = {};
  for (const entry of readDirectory(view)) {
    if (!entry.name.endsWith(".npy")) continue;
    const name = entry.name.slice(0, -4);
    arrays[name] = parseNpy(await readEntryBytes(view, entry), entry.name);
  }
  return arrays;
}
