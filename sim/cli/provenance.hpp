#pragma once
// The provenance every report records (report/run_report.hpp: Provenance): the command that
// reproduces it, the --set overrides, the trainsim version and commit, and the date.
//
// Reproducible output: the date is the current UTC time unless SOURCE_DATE_EPOCH (seconds since
// 1970, the reproducible-builds convention) is set; the commit is the one compiled in unless
// TRAINSIM_COMMIT is set. Either one, when it is used, is named beside its value. Tests and
// scripts/regenerate-reports.sh set both, so reports stay byte-stable across commits.
#include <string>
#include <vector>

#include "report/run_report.hpp"

namespace trainsim::cli {

// `args` are the command's words after "trainsim" as they reproduce the run (no output options);
// each is quoted for a POSIX shell when it needs it. Throws UsageError when SOURCE_DATE_EPOCH
// is set but is not a number of seconds.
Provenance make_provenance(const std::vector<std::string>& args, const std::vector<std::string>& overrides);

std::string shell_quote(const std::string& word);

}  // namespace trainsim::cli
