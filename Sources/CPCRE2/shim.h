// PCRE2 (8-bit code units) for the rule language's `matches` operator. Only
// Sources/SMTPRules/Program/RuleRegex.swift (and the regex benchmark) import this module.
#ifndef SMTPSCOPE_CPCRE2_SHIM_H
#define SMTPSCOPE_CPCRE2_SHIM_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <stddef.h>
#include <stdint.h>
#include <pcre2.h>

// PCRE2_UNSET and PCRE2_ZERO_TERMINATED are cast expressions, which Swift does not import.
static inline size_t smtpscope_pcre2_unset(void) { return PCRE2_UNSET; }

#endif
