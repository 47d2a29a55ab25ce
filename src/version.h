/* version: the build version (git describe, given by the Makefile to
 * version.c alone); "dev" for a build outside it. */
#ifndef GCS_VERSION_H
#define GCS_VERSION_H

extern const char gcs_version[];

#endif
