/*
 * runtime.c - the run-time histogram's buckets (the model is in runtime.h).
 */
#include "runtime.h"

const uint64_t rtq__run_bound_us[RTQ__RUN_BUCKETS - 1] = {
    5000,    10000,   25000,    50000,    100000,    250000,    500000,    1000000,
    2500000, 5000000, 10000000, 30000000, 60000000, 120000000, 300000000, 600000000};

const char *const rtq__run_le[RTQ__RUN_BUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",   "2.5",
    "5",     "10",   "30",    "60",   "120", "300",  "600", "+Inf"};

const char *const rtq__run_le2[RTQ__RUN_BUCKETS] = {
    "le_0.005", "le_0.01", "le_0.025", "le_0.05", "le_0.1", "le_0.25", "le_0.5", "le_1",   "le_2.5",
    "le_5",     "le_10",   "le_30",    "le_60",   "le_120", "le_300",  "le_600", "le_inf"};

int rtq__run_bucket(uint64_t us) {
  int lo = 0, hi = RTQ__RUN_BUCKETS - 1; /* the answer is in [lo, hi] */
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (us <= rtq__run_bound_us[mid]) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
