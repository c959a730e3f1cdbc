/**
 * The data sets of the original's downstream (eval_downstream.py), extrinsic (eval_causal3dident.py)
 * and real-world invariance (eval_realworld_invariance.py) evaluations, by the original's names, with
 * the directory each expects under `--data-root` (default `../data/`). See docs/DATASETS.md.
 */
import * as path from 'node:path';
import { SslInvError } from '../errors';
import { readAloi, AloiMode } from './aloi';
import { readAlot, AlotMode } from './alot';
import { readCaltech101 } from './caltech101';
import { readCausal3DIdent, Causal3DIdentDataset, Causal3DIdentReadOptions } from './causal3dident';
import { readCelebA } from './celeba';
import { readCifar10 } from './cifar';
import { readCoil100 } from './coil100';
import { readDali } from './dali';
import { readExposureErrors } from './exposure-errors';
import { readFaces300W } from './faces300w';
import { readFlickr1024 } from './flickr1024';
import { readFlowers } from './flowers';
import { readLeedsSportsPose } from './lsp';
import { readRealBlur } from './real-blur';
import { DownstreamDataset, Metric, RealWorldDataset, Sample, Task } from './types';

export * from './types';
export { readCifar10, cifarImage } from './cifar';
export type { CifarDataset, CifarSample, CifarSplit, CifarReadOptions } from './cifar';
export { readCaltech101, createCaltech101Splits, parseCaltech101Split } from './caltech101';
export { readFlowers, flowersSplit, flowersTargets, flowersImageName } from './flowers';
export { readFaces300W, faces300wTarget } from './faces300w';
export type { CropBox, Faces300WSample, Faces300WDataset, Faces300WReadOptions, Faces300WTarget } from './faces300w';
export { readCelebA, celebaTarget, parseCelebaCsv } from './celeba';
export type { CelebASample, CelebADataset, CelebAReadOptions } from './celeba';
export { readLeedsSportsPose, lspTarget } from './lsp';
export type { LspSample, LspDataset, LspReadOptions } from './lsp';
export { readCausal3DIdent, parseCausal3DIdentTarget } from './causal3dident';
export type { Causal3DIdentSample, Causal3DIdentDataset, Causal3DIdentReadOptions, Causal3DIdentTarget } from './causal3dident';
export { readCoil100 } from './coil100';
export { readAloi } from './aloi';
export type { AloiMode } from './aloi';
export { readAlot } from './alot';
export type { AlotMode } from './alot';
export { readExposureErrors } from './exposure-errors';
export { readDali } from './dali';
export { readFlickr1024 } from './flickr1024';
export { readRealBlur } from './real-blur';
export { generateShuffleSplits } from './splits';

/** Options any downstream reader accepts (each reads the ones it knows). */
export interface DownstreamReadOptions {
  /** eval_downstream's --crop-size (default 224): scales the 300W, CelebA and LSP targets. */
  cropSize?: number;
  /** CIFAR-10 and CelebA: check the original's MD5s (default true). */
  verifyChecksums?: boolean;
  /** Caltech101 and Flowers: check that every listed image exists (default true). */
  checkFiles?: boolean;
  /** 300W: 'indoor+outdoor' (default), 'indoor' or 'outdoor'. */
  mode?: string;
  /** CIFAR-10: rows per batch (test fixtures only; default 10000). */
  expectedRows?: number;
}

export interface DownstreamInfo {
  /** eval_downstream's --dataset value. */
  name: string;
  /** The folder under --data-root (dataset_info's 'dir'). */
  dir: string;
  task: Task;
  /** dataset_info's num_classes (null for regression). */
  numClasses: number | null;
  metric: Metric;
  /** dataset_info's splits: [train, trainval's second part, test]; 'train' twice means trainval = train. */
  originalSplits: readonly [string, string, string];
  read(root: string, opts?: DownstreamReadOptions): Promise<DownstreamDataset<Sample>>;
}

/** eval_downstream.py's dataset_info, by its (lower-case) names. */
export const DOWNSTREAM_DATASETS: Readonly<Record<string, DownstreamInfo>> = Object.freeze({
  cifar10: {
    name: 'cifar10', dir: 'CIFAR10', task: 'classification', numClasses: 10, metric: 'accuracy',
    originalSplits: ['train', 'train', 'test'], read: (r, o) => readCifar10(r, o),
  },
  flowers: {
    // eval_downstream's isinstance(trainval, Flowers) is false for the ConcatDataset: plain accuracy
    name: 'flowers', dir: 'Flowers', task: 'classification', numClasses: 102, metric: 'accuracy',
    originalSplits: ['train', 'val', 'test'], read: (r, o) => readFlowers(r, o),
  },
  caltech101: {
    name: 'caltech101', dir: 'Caltech101', task: 'classification', numClasses: 102, metric: 'mean per-class accuracy',
    originalSplits: ['train', 'train', 'test'], read: (r, o) => readCaltech101(r, o),
  },
  '300w': {
    name: '300w', dir: '300W', task: 'regression', numClasses: null, metric: 'r2',
    originalSplits: ['train', 'val', 'test'], read: (r, o) => readFaces300W(r, o),
  },
  celeba: {
    name: 'celeba', dir: 'CelebA', task: 'regression', numClasses: 40, metric: 'r2',
    originalSplits: ['train', 'val', 'test'], read: (r, o) => readCelebA(r, o),
  },
  leeds_sports_pose: {
    name: 'leeds_sports_pose', dir: 'LeedsSportsPose', task: 'regression', numClasses: null, metric: 'r2',
    originalSplits: ['train', 'train', 'test'], read: (r, o) => readLeedsSportsPose(r, o),
  },
} satisfies Record<string, DownstreamInfo>);

export interface RealWorldInfo {
  /** eval_realworld_invariance's --dataset value. */
  name: string;
  /** The folder under --data-root (DATA_INFO's 'root'). */
  dir: string;
  /** DATA_INFO's k (nominal views per group). */
  k: number;
  read(root: string): Promise<RealWorldDataset>;
}

const aloi = (mode: AloiMode, k: number): RealWorldInfo => ({ name: `ALOI-${mode}`, dir: 'ALOI', k, read: (r) => readAloi(r, mode) });
const alot = (mode: AlotMode, k: number): RealWorldInfo => ({ name: `ALOT-${mode}`, dir: 'ALOT', k, read: (r) => readAlot(r, mode) });

/** eval_realworld_invariance.py's DATA_INFO, by its (case-sensitive) names, in its order. */
export const REALWORLD_DATASETS: Readonly<Record<string, RealWorldInfo>> = Object.freeze({
  COIL100: { name: 'COIL100', dir: 'COIL100', k: 72, read: (r: string) => readCoil100(r) },
  'ALOI-viewpoint': aloi('viewpoint', 72),
  'ALOI-illumination': aloi('illumination', 8),
  'ALOI-temperature': aloi('temperature', 12),
  'ALOT-viewpoint': alot('viewpoint', 16),
  'ALOT-illumination': alot('illumination', 6),
  'ALOT-temperature': alot('temperature', 2),
  ExposureErrors: { name: 'ExposureErrors', dir: 'ExposureErrors', k: 6, read: (r: string) => readExposureErrors(r) },
  DaLI: { name: 'DaLI', dir: 'DaLI', k: 32, read: (r: string) => readDali(r) },
  Flickr1024: { name: 'Flickr1024', dir: 'Flickr1024', k: 2, read: (r: string) => readFlickr1024(r) },
  RealBlur: { name: 'RealBlur', dir: 'RealBlur', k: 2, read: (r: string) => readRealBlur(r) },
});

/** eval_causal3dident.py's data set. */
export const CAUSAL3DIDENT_INFO = Object.freeze({ name: 'causal3dident', dir: 'Causal3DIdent' });

/** The original's default --data-root. */
export const DEFAULT_DATA_ROOT = '../data/';

function unknown(kind: string, name: string, names: string[]): SslInvError {
  return new SslInvError('ERR_INVALID_ARGUMENT', `unknown ${kind} data set '${name}'; expected one of ${names.join(', ')}`, { field: 'dataset' });
}

/** The downstream entry for a name, case-insensitively (eval_downstream lower-cases --dataset). */
export function downstreamInfo(name: string): DownstreamInfo {
  const info = DOWNSTREAM_DATASETS[name.toLowerCase()];
  if (!info) throw unknown('downstream', name, Object.keys(DOWNSTREAM_DATASETS));
  return info;
}

/** The real-world entry for a name (case-sensitive, as the original's DATA_INFO lookup). */
export function realWorldInfo(name: string): RealWorldInfo {
  const info = Object.prototype.hasOwnProperty.call(REALWORLD_DATASETS, name) ? REALWORLD_DATASETS[name] : undefined;
  if (!info) throw unknown('real-world', name, Object.keys(REALWORLD_DATASETS));
  return info;
}

/** Reads a downstream data set by the original's name from `<dataRoot>/<dir>`. */
export async function readDownstreamDataset(name: string, dataRoot: string = DEFAULT_DATA_ROOT, opts: DownstreamReadOptions = {}):
  Promise<DownstreamDataset<Sample>> {
  const info = downstreamInfo(name);
  return info.read(path.join(dataRoot, info.dir), opts);
}

/** Reads a real-world invariance data set by the original's name from `<dataRoot>/<dir>`. */
export async function readRealWorldDataset(name: string, dataRoot: string = DEFAULT_DATA_ROOT): Promise<RealWorldDataset> {
  const info = realWorldInfo(name);
  return info.read(path.join(dataRoot, info.dir));
}

/** Reads Causal3DIdent from `<dataRoot>/Causal3DIdent` (eval_causal3dident's --target as `opts.target`). */
export async function readCausal3DIdentDataset(dataRoot: string = DEFAULT_DATA_ROOT, opts: Causal3DIdentReadOptions = {}):
  Promise<Causal3DIdentDataset> {
  return readCausal3DIdent(path.join(dataRoot, CAUSAL3DIDENT_INFO.dir), opts);
}
