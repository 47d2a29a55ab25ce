/* version: the build version, which the Makefile passes as GCS_VERSION
 * (git describe); "dev" for a build outside it. */
#ifndef GCS_VERSION_H
#define GCS_VERSION_H

#ifndef GCS_VERSION
#define GCS_VERSION "dev"
#endif

#endif
