/* populator's HTML report: the charts of the run's timeline, drawn by uPlot from the report embedded
   in the page (#report-data). Each chart is kept in window.populatorCharts under its name, with the
   data it plots (u.data: times in epoch seconds, then one array a series). */
(function () {
  "use strict";
  var report = JSON.parse(document.getElementById("report-data").textContent);
  var timeline = report.timeline || { columns: [], points: [] };
  var started = Date.parse(report.started_at || "") / 1000 || 0;

  function column(name) {
    var at = timeline.columns.indexOf(name);
    return timeline.points.map(function (point) { return at < 0 ? null : point[at]; });
  }

  var t = column("t");
  var x = t.map(function (seconds) { return started + seconds; });
  var items = column("items");

  // Items acknowledged per second between a point and the one before it.
  var acknowledged = items.map(function (count, i) {
    if (i === 0 || t[i] <= t[i - 1]) { return null; }
    return (count - items[i - 1]) / (t[i] - t[i - 1]);
  });

  // Requests throttled in the interval that ends at each point, by reason (or all together when
  // no reason was ever given).
  function perInterval(totals) {
    return totals.map(function (total, i) { return i === 0 ? total : total - totals[i - 1]; });
  }
  var byReason = column("throttled_by_reason");
  var reasons = [];
  byReason.forEach(function (counts) {
    Object.keys(counts || {}).forEach(function (reason) {
      if (reasons.indexOf(reason) < 0) { reasons.push(reason); }
    });
  });
  reasons.sort();
  var throttleSeries = reasons.length
    ? reasons.map(function (reason) {
        return { label: reason, values: perInterval(byReason.map(function (c) { return (c || {})[reason] || 0; })) };
      })
    : [{ label: "throttled", values: perInterval(column("throttled").map(function (n) { return n || 0; })) }];

  var counts = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7, 1e8];
  var palette = ["#1f6fb2", "#d35400", "#7d3c98", "#16a085", "#c0392b", "#2c3e50", "#b7950b", "#6c7a89"];

  function number(digits) {
    return function (u, value) {
      return value == null ? "–" : value.toLocaleString("en-US", { maximumFractionDigits: digits });
    };
  }
  function usd(u, value) {
    return value == null ? "–" : "$" + value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 6 });
  }
  function compact(u, values) {
    return values.map(function (v) {
      return v == null ? "" : v.toLocaleString("en-US", { notation: "compact", maximumFractionDigits: 2 });
    });
  }
  function line(label, color, value, extra) {
    var series = { label: label, stroke: color, width: 2, value: value, spanGaps: true, points: { show: false } };
    return Object.assign(series, extra || {});
  }

  var charts = {
    rate: {
      series: [
        line("acknowledged items/s", palette[0], number(1)),
        line("rate", palette[1], number(1), { dash: [6, 4] }),
        line("ceiling", palette[4], number(1), { width: 1.5 }),
      ],
      data: [acknowledged, column("write_rate"), column("write_ceiling")],
      fromZero: true,
    },
    throttles: {
      series: throttleSeries.map(function (s, i) {
        return line(s.label, palette[(i + 4) % palette.length], number(0), {
          paths: uPlot.paths.stepped({ align: -1 }),
          fill: palette[(i + 4) % palette.length] + "22",
        });
      }),
      data: throttleSeries.map(function (s) { return s.values; }),
      incrs: counts,
    },
    cost: {
      series: [line("cost so far (USD)", palette[3], usd, { fill: palette[3] + "22" })],
      data: [column("cost_usd")],
      axis: function (u, values) {
        return values.map(function (v) { return "$" + v.toLocaleString("en-US", { maximumSignificantDigits: 3 }); });
      },
    },
    progress: {
      series: [
        line("items acknowledged", palette[0], number(0)),
        line("objects done", palette[2], number(0), { scale: "objects" }),
      ],
      data: [items, column("objects_done")],
      right: "objects",
    },
  };

  // An axis as wide as its longest label (uPlot's own recipe), so that "$0.0013" is not cut.
  function fit(u, values, index, cycle) {
    var axis = u.axes[index];
    if (cycle > 1) { return axis._size; }
    var longest = (values || []).reduce(function (a, b) { return b.length > a.length ? b : a; }, "");
    u.ctx.font = axis.font[0];
    return Math.ceil(axis.ticks.size + axis.gap + u.ctx.measureText(longest).width / devicePixelRatio) + 4;
  }

  function height() { return window.innerWidth < 560 ? 200 : 240; }

  function draw(name, spec) {
    var element = document.getElementById("chart-" + name);
    if (!element) { return null; }
    if (x.length === 0) {
      element.innerHTML = '<p class="empty">This report has no timeline.</p>';
      return null;
    }
    var axes = [
      { stroke: "#5b6673", grid: { stroke: "#eef1f5" }, ticks: { stroke: "#d8dee6" }, space: 70 },
      { stroke: "#5b6673", grid: { stroke: "#eef1f5" }, ticks: { stroke: "#d8dee6" }, size: fit, values: spec.axis || compact },
    ];
    if (spec.incrs) { axes[1].incrs = spec.incrs; }
    var scales = { x: { time: true } };
    if (spec.fromZero) { scales.y = { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } }; }
    if (spec.right) {
      axes.push({ scale: spec.right, side: 1, stroke: "#7d3c98", grid: { show: false }, size: fit, values: compact, incrs: counts });
      scales[spec.right] = { auto: true };
    }
    var options = {
      width: Math.max(element.clientWidth, 200),
      height: height(),
      series: [{ label: "time" }].concat(spec.series),
      axes: axes,
      scales: scales,
      legend: { live: true },
      cursor: { points: { size: 7 } },
    };
    return new uPlot(options, [x].concat(spec.data), element);
  }

  var drawn = {};
  Object.keys(charts).forEach(function (name) {
    var chart = draw(name, charts[name]);
    if (chart) { drawn[name] = chart; }
  });
  window.populatorCharts = drawn;

  var pending = null;
  window.addEventListener("resize", function () {
    if (pending) { cancelAnimationFrame(pending); }
    pending = requestAnimationFrame(function () {
      Object.keys(drawn).forEach(function (name) {
        var element = document.getElementById("chart-" + name);
        drawn[name].setSize({ width: Math.max(element.clientWidth, 200), height: height() });
      });
    });
  });
  document.body.setAttribute("data-charts", "ready");
})();
