/**
 * A small model with several inputs of other dtypes than float32, built here: mean-pooled
 * token embeddings, as a text-embedding service runs. Inputs `input_ids` and
 * `attention_mask` int64 [N, L] and `scale` float32 [N, 1]; outputs `embedding` float32
 * [N, 8] (the masked mean of the tokens' embeddings times scale) and `top` int64 [N] (its
 * arg-max).
 */
import { makeNode, makeValueInfo } from '../../src/onnx/graph.js';
import { makeTensor, writeModel } from '../../src/onnx/model.js';
import { DataType, onnx, type NodeProto } from '../../src/onnx/proto.js';
import { random, randomArray } from '../quantize/graphs.js';

type AttributeProto = ReturnType<typeof onnx.AttributeProto.create>;

export const VOCAB = 50;
export const DIM = 8;

export function embeddingModel(): Uint8Array {
  const emb = randomArray(VOCAB * DIM, random(7));
  const attr = (name: string, i: number): AttributeProto => onnx.AttributeProto.create({ name, i, type: onnx.AttributeProto.AttributeType.INT });
  const withAttr = (n: NodeProto, ...a: AttributeProto[]): NodeProto => Object.assign(n, { attribute: a });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'tensorrt-node-test',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'embedding',
      node: [
        makeNode('Gather', ['emb', 'input_ids'], ['tokens'], 'gather'),
        withAttr(makeNode('Cast', ['attention_mask'], ['mask'], 'cast'), attr('to', DataType.FLOAT)),
        makeNode('Unsqueeze', ['mask', 'axis2'], ['mask3'], 'unsqueeze'),
        makeNode('Mul', ['tokens', 'mask3'], ['masked'], 'mask_tokens'),
        withAttr(makeNode('ReduceSum', ['masked', 'axis1'], ['sum'], 'sum'), attr('keepdims', 0)),
        withAttr(makeNode('ReduceSum', ['mask', 'axis1'], ['count'], 'count'), attr('keepdims', 1)),
        makeNode('Div', ['sum', 'count'], ['mean'], 'mean'),
        makeNode('Mul', ['mean', 'scale'], ['embedding'], 'scale_mean'),
        withAttr(makeNode('ArgMax', ['mean'], ['top'], 'top'), attr('axis', 1), attr('keepdims', 0)),
      ],
      initializer: [makeTensor('emb', emb, [VOCAB, DIM]), makeTensor('axis1', BigInt64Array.of(1n), [1]), makeTensor('axis2', BigInt64Array.of(2n), [1])],
      input: [
        makeValueInfo('input_ids', DataType.INT64, ['N', 'L']),
        makeValueInfo('attention_mask', DataType.INT64, ['N', 'L']),
        makeValueInfo('scale', DataType.FLOAT, ['N', 1]),
      ],
      output: [makeValueInfo('embedding', DataType.FLOAT, ['N', DIM]), makeValueInfo('top', DataType.INT64, ['N'])],
    },
  });
  return writeModel(model);
}

/** One request of `rows` sequences of `length` tokens, the last `pad` of each masked out. */
export function embeddingRequest(seed: number, rows: number, length: number, pad = 0): Record<string, { data: BigInt64Array | Float32Array; dims: number[] }> {
  const ids = new BigInt64Array(rows * length);
  const mask = new BigInt64Array(rows * length);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < length; t++) {
      ids[r * length + t] = BigInt((seed * 31 + r * 7 + t * 13) % VOCAB);
      mask[r * length + t] = t < length - pad ? 1n : 0n;
    }
  }
  const scale = Float32Array.from({ length: rows }, (_, r) => 1 + ((seed + r) % 5) / 4);
  return {
    input_ids: { data: ids, dims: [rows, length] },
    attention_mask: { data: mask, dims: [rows, length] },
    scale: { data: scale, dims: [rows, 1] },
  };
}
