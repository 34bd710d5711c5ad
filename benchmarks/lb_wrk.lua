-- wrk script: print the p95 latency (wrk's --latency table has no p95) and the non-2xx count.
done = function(summary, latency, requests)
  io.write(string.format("p50_ms %.2f\np95_ms %.2f\np99_ms %.2f\n", latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000))
  io.write(string.format("requests %d\nnon2xx %d\nerrors %d\n", summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
