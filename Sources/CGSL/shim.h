#ifndef REFEREE_CGSL_SHIM_H
#define REFEREE_CGSL_SHIM_H
#include <gsl/gsl_errno.h>
#include <gsl/gsl_math.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sf_gamma.h>
#include <gsl/gsl_sf_erf.h>
#include <gsl/gsl_sf_log.h>
#include <gsl/gsl_sf_exp.h>
#include <gsl/gsl_integration.h>
#include <gsl/gsl_roots.h>

/* Swift 6 rejects GSL's mutable global generator types; hand them out through functions. */
static inline const gsl_rng_type *referee_rng_mt19937(void) { return gsl_rng_mt19937; }
static inline const gsl_root_fsolver_type *referee_root_brent(void) { return gsl_root_fsolver_brent; }
#endif
