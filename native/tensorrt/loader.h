// Finds TensorRT at run time (DESIGN.md decision 6): dlopen libnvinfer.so.11, then
// .so.10, read getInferLibVersion(), check the factory symbols, open the ONNX
// parser of the same major, then the provider shared object compiled for that
// major (tensorrt_node_provider_trt<major>.so next to the loaded .node file).
// Nothing here links TensorRT; only extern "C" symbols are resolved by name.
//
// Overrides, so every decision can be tested without TensorRT installed:
//   TENSORRT_NODE_NVINFER_PATH     a file to dlopen instead of searching libnvinfer
//   TENSORRT_NODE_ONNXPARSER_PATH  a file to dlopen instead of searching libnvonnxparser
//   TENSORRT_NODE_PROVIDER_DIR     the folder holding the provider objects
#pragma once

#include <string>
#include <vector>

namespace tnp::trt {

// Why TensorRT is not usable; kOk when it is. The strings are stable (JS reads them).
enum class LoaderCode {
  kOk,                    // "ok"
  kLibraryNotFound,       // "library_not_found": no libnvinfer could be opened
  kMissingSymbol,         // "missing_symbol": libnvinfer lacks a factory or getInferLibVersion
  kUnsupportedMajor,      // "unsupported_major": getInferLibVersion()/10000 is not 10 or 11
  kParserNotFound,        // "parser_not_found": no libnvonnxparser of that major
  kParserMissingSymbol,   // "parser_missing_symbol": the parser lacks createNvOnnxParser_INTERNAL
  kProviderNotCompiled,   // "provider_not_compiled": no tensorrt_node_provider_trt<major>.so
  kProviderLoadFailed,    // "provider_load_failed": dlopen of the provider failed
};

const char* LoaderCodeName(LoaderCode code);

struct LoaderReport {
  LoaderCode code = LoaderCode::kLibraryNotFound;
  bool libraryFound = false;
  std::string libraryPath;      // what was opened (the name given to dlopen or the resolved file)
  int libraryVersion = 0;       // getInferLibVersion(), e.g. 101600
  int major = 0;                // libraryVersion / 10000
  int minor = 0;
  int patch = 0;
  bool parserFound = false;
  std::string parserPath;
  std::vector<int> providersCompiled;  // majors with a provider object next to the addon
  bool providerCompiled = false;       // one for `major` exists
  bool providerLoaded = false;
  std::string providerPath;
  std::string addonPath;        // the .node file this loader lives in
  std::string reason;           // a sentence a person can act on; empty when code == kOk
  std::vector<std::string> tried;  // every library name or file tried, with dlerror text
};

// Runs once per process (thread-safe), never throws; later calls return the same report.
const LoaderReport& Probe();

// Symbols from the opened libraries; nullptr when not loaded or absent.
void* InferSymbol(const char* name);
void* ParserSymbol(const char* name);
void* ProviderSymbol(const char* name);

}  // namespace tnp::trt
