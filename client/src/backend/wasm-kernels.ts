import * as tf from '@tensorflow/tfjs';

/** The part of tfjs-backend-wasm's backend a kernel written in TypeScript uses. */
interface WasmKernelBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** What tfjs hands a kernel function: its inputs, attributes and the (wasm) backend. */
interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  attrs?: tf.NamedAttrMap;
  backend: unknown;
}

/**
 * UnsortedSegmentSum for the wasm backend, which lacks it (tfjs 4): out[s] = Σ x[i] over the i
 * with segmentIds[i] = s (ids outside [0, numSegments) dropped, as in TensorFlow). tfjs needs it
 * for the gradient of a gather, i.e. of an embedding lookup when an embedding is trained.
 */
function unsortedSegmentSum(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmKernelBackend;
  const x = args.inputs['x'];
  const ids = args.inputs['segmentIds'];
  const numSegments = Number(args.attrs?.['numSegments']);
  if (x === undefined || ids === undefined || !Number.isInteger(numSegments))
    throw new Error('UnsortedSegmentSum needs x, segmentIds and numSegments');
  const rows = ids.shape.reduce((p, d) => p * d, 1);
  const inner = x.shape.slice(ids.shape.length).reduce((p, d) => p * d, 1);
  const out = backend.makeOutput([numSegments, ...x.shape.slice(ids.shape.length)], x.dtype);
  const values = backend.typedArrayFromHeap(x);
  const segments = backend.typedArrayFromHeap(ids);
  const sums = backend.typedArrayFromHeap(out);
  sums.fill(0);
  for (let i = 0; i < rows; i++) {
    const segment = segments[i] ?? -1;
    if (segment < 0 || segment >= numSegments) continue;
    for (let j = 0; j < inner; j++)
      sums[segment * inner + j] = (sums[segment * inner + j] ?? 0) + (values[i * inner + j] ?? 0);
  }
  return out;
}

/**
 * Conv2DBackpropFilter for the wasm backend, which lacks it (tfjs 4): the gradient of a 2-D
 * convolution (NHWC, dilation 1) with respect to its filter,
 * dW[i, j, c, o] = Σ_{b, y, x} X[b, y·sh + i − top, x·sw + j − left, c] · dY[b, y, x, o].
 * tfjs needs it to train a convolution's kernel (pre-training a CNN base).
 */
function conv2DBackpropFilter(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmKernelBackend;
  const x = args.inputs['x'];
  const dy = args.inputs['dy'];
  const attrs = (args.attrs ?? {}) as unknown as {
    strides: [number, number] | number;
    pad: 'valid' | 'same' | number;
    dataFormat: 'NHWC' | 'NCHW';
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    filterShape: [number, number, number, number];
  };
  if (x === undefined || dy === undefined || x.shape.length !== 4)
    throw new Error('Conv2DBackpropFilter needs a 4-D x and dy');
  if (attrs.dataFormat !== 'NHWC') throw new Error('Conv2DBackpropFilter on wasm: NHWC only');
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const [kh, kw] = attrs.filterShape;
  const out = backend.makeOutput([...attrs.filterShape], 'float32');
  const xs = backend.typedArrayFromHeap(x);
  const dys = backend.typedArrayFromHeap(dy);
  const dw = backend.typedArrayFromHeap(out);
  dw.fill(0);
  for (let b = 0; b < batchSize; b++)
    for (let yr = 0; yr < outHeight; yr++)
      for (let xc = 0; xc < outWidth; xc++) {
        const dyBase = ((b * outHeight + yr) * outWidth + xc) * outChannels;
        for (let i = 0; i < kh; i++) {
          const row = yr * info.strideHeight + i - info.padInfo.top;
          if (row < 0 || row >= inHeight) continue;
          for (let j = 0; j < kw; j++) {
            const col = xc * info.strideWidth + j - info.padInfo.left;
            if (col < 0 || col >= inWidth) continue;
            const xBase = ((b * inHeight + row) * inWidth + col) * inChannels;
            for (let c = 0; c < inChannels; c++) {
              const value = xs[xBase + c] ?? 0;
              if (value === 0) continue;
              const wBase = ((i * kw + j) * inChannels + c) * outChannels;
              for (let o = 0; o < outChannels; o++)
                dw[wBase + o] = (dw[wBase + o] ?? 0) + value * (dys[dyBase + o] ?? 0);
            }
          }
        }
      }
  return out;
}

/** Registers the kernels Flotilla adds to the wasm backend; idempotent. */
export function registerWasmKernels(): void {
  if (tf.getKernel('UnsortedSegmentSum', 'wasm') === undefined)
    tf.registerKernel({
      kernelName: 'UnsortedSegmentSum',
      backendName: 'wasm',
      kernelFunc: unsortedSegmentSum,
    });
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm') === undefined)
    tf.registerKernel({
      kernelName: 'Conv2DBackpropFilter',
      backendName: 'wasm',
      kernelFunc: conv2DBackpropFilter,
    });
}
