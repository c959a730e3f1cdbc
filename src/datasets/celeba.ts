/**
 * CelebA as the original's datasets/celeba.py (torchvision 0.8's CelebA with a landmark transform
 * added) reads it for eval_downstream (target_type 'landmarks'), root = `<data-root>/CelebA`:
 *
 *     CelebA/celeba/list_eval_partition.txt        "<file> <0|1|2>"          (no header)
 *     CelebA/celeba/identity_CelebA.txt            "<file> <id>"             (no header)
 *     CelebA/celeba/list_bbox_celeba.txt           count, header, "<file> x y w h"
 *     CelebA/celeba/list_landmarks_align_celeba.txt count, header, "<file> 10 ints"
 *     CelebA/celeba/list_attr_celeba.txt           count, header, "<file> 40 x +-1"
 *     CelebA/celeba/img_align_celeba/000001.jpg ...
 *
 * Each text file is read as `csv.reader(f, delimiter=' ', skipinitialspace=True)`; rows are selected
 * by the official partition (train 0, valid 1, test 2) and the other files are indexed by the same
 * row positions. eval_downstream: trainval = train + valid, test = test, regression (R^2).
 *
 * The target (`__getitem__`, computed by `celebaTarget`): with w, h the image's size (PIL, from the
 * file header) and m = min(w, h), each landmark becomes ((x - (w - m) / 2) / m) * crop_size (y with h),
 * computed in float32 (an int64 tensor minus a Python float) and stored into `torch.zeros_like` of the
 * int64 landmarks, i.e. truncated toward zero: the targets are integers.
 *
 * The original downloads the files again unless their MD5s match its list (download=True); here a
 * mismatch is an error unless `verifyChecksums: false`. Checked besides (ERR_DATASET_LAYOUT naming
 * file and line): every file and the image directory exist; every data row has a file name and the
 * official number of integers; all five files list the same images in the same order (the original
 * assumes it); every selected image exists (its header gives its size).
 */
import * as path from 'node:path';
import { checkFilesExist, layoutError, mapLimit, md5Hex, readBinaryFile, readImageSize, ImageSize, listDir } from './common';
import { DownstreamDataset, Sample, Split } from './types';

export const CELEBA_BASE_FOLDER = 'celeba';

/** The original's file list (file, md5) minus the image archive, and the integers per data row. */
export const CELEBA_FILES: readonly { file: string; md5: string; header: boolean; columns: number }[] = [
  { file: 'list_attr_celeba.txt', md5: '75e246fa4810816ffd6ee81facbd244c', header: true, columns: 40 },
  { file: 'identity_CelebA.txt', md5: '32bd1bd63d3c78cd57e08160ec5ed1e2', header: false, columns: 1 },
  { file: 'list_bbox_celeba.txt', md5: '00566efa6fedff7a56946cd1c10f1c16', header: true, columns: 4 },
  { file: 'list_landmarks_align_celeba.txt', md5: 'cc24ecafdb5b50baae59b03474781f8c', header: true, columns: 10 },
  { file: 'list_eval_partition.txt', md5: 'd32c9cbf5e040fd4025c592c306e6668', header: false, columns: 1 },
];

export const CELEBA_SPLITS: Readonly<Record<'train' | 'valid' | 'test', number>> = { train: 0, valid: 1, test: 2 };

export interface CelebASample extends Sample<number[]> {
  /** The 10 aligned landmarks from the file (lefteye x, y, righteye x, y, nose, leftmouth, rightmouth). */
  landmarks: number[];
  /** The image's size, from its header. */
  imageSize: ImageSize;
}

export interface CelebADataset extends DownstreamDataset<CelebASample> {
  splits: { trainval: Split<CelebASample>; train: Split<CelebASample>; val: Split<CelebASample>; test: Split<CelebASample> };
}

export interface CelebAReadOptions {
  /** The network input size (eval_downstream's --crop-size, default 224): scales the targets. */
  cropSize?: number;
  /** Check the original's MD5s of the five text files (default true). */
  verifyChecksums?: boolean;
}

export interface CelebACsv {
  header: string[];
  index: string[];
  data: number[][];
}

/** One line as csv.reader(delimiter=' ', skipinitialspace=True) splits it ([] for an empty line). */
export function celebaCsvRow(line: string): string[] {
  if (line === '') return [];
  // Spaces at the start of a field are skipped; a space after a field ends it; a line ending right
  // after a delimiter leaves an empty last field.
  return line.replace(/^ +/, '').split(/ +/);
}

/** The original's `_load_csv(filename, header)` on the file's text, with the row checks above. */
export function parseCelebaCsv(text: string, file: string, header: boolean, columns: number): CelebACsv {
  // Python's text mode turns \r\n and \r into \n; csv then splits lines on \n.
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  let rows = lines.map(celebaCsvRow);
  let head: string[] = [];
  let first = 0;
  if (header) {
    if (rows.length < 2) throw layoutError('expected a count line and a header line before the data', file);
    head = rows[1]!;
    rows = rows.slice(2);
    first = 2;
  }
  const index: string[] = [];
  const data: number[][] = [];
  rows.forEach((r, i) => {
    const where = `line ${first + i + 1}`;
    if (r.length === 0 || r[0] === '') throw layoutError('empty line; expected "<image> <integers>"', file, where);
    if (r.length - 1 !== columns) {
      throw layoutError(`has ${r.length - 1} values after the image name; expected ${columns}`, file, where);
    }
    const vals = r.slice(1).map((s) => {
      if (!/^[+-]?\d+$/.test(s)) throw layoutError(`value ${JSON.stringify(s)} is not an integer`, file, where);
      return Number(s);
    });
    index.push(r[0]!);
    data.push(vals);
  });
  return { header: head, index, data };
}

/** The original's landmark transform for one image (pure; see the module comment). */
export function celebaTarget(landmarks: readonly number[], width: number, height: number, cropSize: number): number[] {
  const f = Math.fround;
  const m = Math.min(width, height);
  const px = f((width - m) / 2), py = f((height - m) / 2);
  const out = new Array<number>(landmarks.length).fill(0);
  for (let i = 0; i < Math.trunc(landmarks.length / 2); i++) {
    out[2 * i] = Math.trunc(f(f(f(f(landmarks[2 * i]!) - px) / m) * cropSize)) + 0;
    out[2 * i + 1] = Math.trunc(f(f(f(f(landmarks[2 * i + 1]!) - py) / m) * cropSize)) + 0;
  }
  return out;
}

/** Reads CelebA from `root` (the original's `<data-root>/CelebA`). */
export async function readCelebA(root: string, opts: CelebAReadOptions = {}): Promise<CelebADataset> {
  const base = path.join(root, CELEBA_BASE_FOLDER);
  const cropSize = opts.cropSize ?? 224;
  const imgDir = path.join(base, 'img_align_celeba');
  await listDir(imgDir, 'the aligned CelebA images (img_align_celeba/*.jpg, from img_align_celeba.zip)');
  const csv = new Map<string, CelebACsv>();
  for (const spec of CELEBA_FILES) {
    const file = path.join(base, spec.file);
    const buf = await readBinaryFile(file, `CelebA's ${spec.file}`);
    if (opts.verifyChecksums !== false) {
      const got = md5Hex(buf);
      if (got !== spec.md5) {
        throw layoutError(`MD5 ${got} differs from the original's ${spec.md5} for this file (the original would ` +
          'download the data set again); pass --no-verify-checksums (verifyChecksums: false in the API) to read it anyway', file, 'md5');
      }
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
    } catch (e) {
      throw layoutError('not valid UTF-8 text', file, undefined, e);
    }
    csv.set(spec.file, parseCelebaCsv(text, file, spec.header, spec.columns));
  }
  const partFile = 'list_eval_partition.txt';
  const part = csv.get(partFile)!;
  for (const spec of CELEBA_FILES) {
    const c = csv.get(spec.file)!;
    const file = path.join(base, spec.file);
    if (c.index.length !== part.index.length) {
      throw layoutError(`lists ${c.index.length} images but ${partFile} lists ${part.index.length}; expected the same images`, file);
    }
    for (let i = 0; i < c.index.length; i++) {
      if (c.index[i] !== part.index[i]) {
        throw layoutError(`row ${i + 1} is ${c.index[i]} but row ${i + 1} of ${partFile} is ${part.index[i]}; ` +
          'expected the same images in the same order', file);
      }
    }
  }
  const marks = csv.get('list_landmarks_align_celeba.txt')!;
  const selected = part.data.map((r, i) => [r[0]!, i] as const).filter(([p]) => p >= 0 && p <= 2).map(([, i]) => i);
  const imagePaths = selected.map((i) => path.join(imgDir, part.index[i]!));
  await checkFilesExist(imagePaths, 'images', path.join(base, partFile));
  const sizes = await mapLimit(imagePaths, 32, (p) => readImageSize(p));
  const samples = new Map<number, CelebASample>();
  selected.forEach((i, k) => {
    const size = sizes[k]!;
    samples.set(i, {
      path: imagePaths[k]!, target: celebaTarget(marks.data[i]!, size.width, size.height, cropSize),
      landmarks: marks.data[i]!, imageSize: size,
    });
  });
  const mk = (code: number, name: string): Split<CelebASample> => ({
    samples: part.data.map((r, i) => [r[0], i] as const).filter(([p]) => p === code).map(([, i]) => samples.get(i)!),
    source: `${partFile} partition ${code} (${name})`,
  });
  const train = mk(0, 'train'), val = mk(1, 'valid'), test = mk(2, 'test');
  return {
    name: 'celeba', root, task: 'regression', numClasses: 40, metric: 'r2',
    splits: { trainval: { samples: [...train.samples, ...val.samples], source: 'train + valid (ConcatDataset)' }, train, val, test },
  };
}
