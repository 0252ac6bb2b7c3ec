// The console's static files (cli/web/), compiled into the binary by cmake/QueuerEmbed.cmake:
// the page needs nothing from the network and nothing from the file system.
#pragma once

#include <cstddef>

namespace queuerctl::web {

struct Asset {
    const char* name;          // "app.js"
    const char* content_type;  // "text/javascript; charset=utf-8"
    const unsigned char* data;
    size_t size;
};

extern const Asset kAssets[];
extern const size_t kAssetCount;

}  // namespace queuerctl::web
