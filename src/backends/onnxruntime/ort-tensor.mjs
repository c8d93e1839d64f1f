/**
 * An onnxruntime Tensor over data the engine holds. The engine holds float16 as its bits in
 * a Uint16Array; where the runtime has Float16Array (Node 23+), onnxruntime-common makes
 * the tensor's data a Float16Array over them, which onnxruntime-node 1.30's binding reads
 * as 0 bytes ("not enough space: expected 8, got 0", microsoft/onnxruntime#32323, open):
 * every float16 input failed on Node 24 and 26. The tensor gets its Uint16Array back, which
 * the binding takes.
 */
export function ortTensor(ort, type, data, dims) {
  const tensor = new ort.Tensor(type, data, dims);
  if (type === 'float16' && data instanceof Uint16Array && tensor.cpuData !== data) tensor.cpuData = data;
  return tensor;
}
