# Fallback build for machines without cmake (CPU backend only): `npx node-gyp rebuild`.
# The source list is read from native/sources.json, the same list CMakeLists.txt uses.
{
  "targets": [
    {
      "target_name": "ssl_inv",
      "sources": ["<!@(node -p \"require('./native/sources.json').common.join(' ')\")"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-frtti"],
      "ldflags": ["-pthread"]
    }
  ]
}
