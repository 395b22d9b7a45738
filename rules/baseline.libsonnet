// Baselines: each signal of lib.baselineSignals against its own recent history, for the
// relative alerts (alerts/baseline.libsonnet) and the severe tier of the quality alert.
//
// The baseline is the larger of the signal's median over relativeBaseline and its mean over
// the hour around the same time one day earlier. The median rather than a mean and standard
// deviation: an incident or a burst within the window moves a mean and inflates a deviation
// for a whole day (masking the next one), while the median holds until the change has lasted
// half the window; and a ratio to it reads as "three times the usual" whatever the signal's
// spread. The same hour yesterday covers daily cycles: a peak hour is compared with
// yesterday's peak, not with the day's median.
//
// Each expression is written out in full rather than reading a rule of the same group, so a
// store that evaluates rules apart from where their results land (vmalert) sees them at once.
local lib = import 'lib.libsonnet';

{
  prometheusRules+:: {
    local c = $._config,
    local rule(record, expr) = { record: record, expr: std.stripChars(expr, '\n') },

    // 1 for each series of the signal now, NaN or not (a ratio is NaN while it has no events,
    // and NaN * 0 + 1 is NaN; `x == bool x` is 0 for NaN and 1 otherwise).
    local present(series) = '((%s == bool %s) * 0 + 1)' % [series, series],
    // … and with a sample older than relativeBaselineMinHistory.
    local ready(series) = '(%(now)s and present_over_time(%(s)s[%(b)s] offset %(h)s))' % {
      now: present(series),
      s: series,
      b: c.relativeBaseline,
      h: c.relativeBaselineMinHistory,
    },
    local baseline(series) =
      local median = 'quantile_over_time(0.5, %s[%s])' % [series, c.relativeBaseline];
      local yesterday = 'avg_over_time(%s[1h] offset 23h30m)' % series;
      '(\n  (%(m)s >= %(y)s)\n  or %(y)s\n  or %(m)s\n)\nand %(ready)s' % { m: median, y: yesterday, ready: ready(series) },

    groups+: [
      {
        name: 'agency-baseline.rules',
        rules: std.flattenArrays([
          local signal = lib.baselineSignals(c)[key];
          local names = lib.baseline(c, signal.series);
          [
            rule(names.ready, '%s\nor %s * 0' % [ready(signal.series), present(signal.series)]),
            rule(names.value, baseline(signal.series)),
            rule(names.ratio, '%s\n/ clamp_min(\n%s\n, %g)' % [signal.series, baseline(signal.series), signal.floor]),
          ]
          for key in std.objectFields(lib.baselineSignals(c))
        ]),
      },
    ],
  },
}
