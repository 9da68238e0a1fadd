# med(list): "median (min-max)" of the space-separated numbers in list,
# for the pair scripts (bench-store-pairs.sh, bench-http-pairs.sh), which
# put this file in front of their own awk programs.
function med(list,   n, v, i, j, t) {
  n = split(list, v, " ")
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
  return sprintf("%.3f (%.3f-%.3f)", n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2, v[1], v[n])
}
