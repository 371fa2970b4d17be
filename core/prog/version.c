/* --version of every program: what was built (version, git commit, build type, from the header
 * cmake/FedcGitVersion.cmake writes at build time) and what this CPU gives the kernels. Kept apart
 * so that a new commit recompiles this file only. */
#include <stdio.h>

#include "fedc/kernels.h"
#include "fedc_version.h"
#include "options.h"

void fedc_print_version(FILE *f, const char *display) {
    fprintf(f, "%s (fedc) %s\n", display, FEDC_VERSION);
    fprintf(f, "commit: %s\n", FEDC_GIT_COMMIT);
    fprintf(f, "build type: %s\n", FEDC_BUILD_TYPE[0] ? FEDC_BUILD_TYPE : "none");
    /* The kernels pick AVX-512 or AVX2+FMA at start-up (core/nn kernels.c); FEDC_ISA can hold
     * them to a lower level, so both what the CPU has and what runs are shown. */
    fedc_isa found = fedc_isa_detect(), active = fedc_isa_active();
    fputs("instruction sets:", f);
    if (found == FEDC_ISA_GENERIC)
        fputs(" none beyond the x86-64 baseline", f);
    for (int isa = FEDC_ISA_AVX2; isa <= (int)found; isa++)
        fprintf(f, " %s", isa == FEDC_ISA_AVX2 ? "avx2+fma" : fedc_isa_name((fedc_isa)isa));
    fprintf(f, " (kernels run %s)\n", fedc_isa_name(active));
}
