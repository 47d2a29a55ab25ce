#include "version.h"

#ifndef GCS_VERSION
#define GCS_VERSION "dev"
#endif

const char gcs_version[] = GCS_VERSION;
