/* chunkmap.c - storage of the chunk map described in chunkmap.h. */
#include "chunkmap.h"

uint8_t mpool_chunk_map[CHUNK_ENTRIES];
