// The dashboard's 12-month trend chart: drawn with ECharts when /static/vendor/echarts.min.js is
// there, from the numbers the page already shows in its table (which stays when it is not).
(function () {
  "use strict";
  var table = document.getElementById("trend");
  var box = document.getElementById("trend-chart");
  if (!table || !box || typeof window.echarts === "undefined") {
    return;
  }
  var trend = JSON.parse(table.getAttribute("data-trend") || "[]");
  box.hidden = false;
  var chart = window.echarts.init(box);
  chart.setOption({
    animation: false,
    // the HTML tooltip writes style="" attributes, which style-src 'self' blocks: draw it on the canvas
    tooltip: { trigger: "axis", renderMode: "richText" },
    legend: {},
    xAxis: { type: "category", data: trend.map(function (m) { return m.month; }) },
    yAxis: [{ type: "value" }, { type: "value" }],
    series: [
      { name: table.getAttribute("data-records"), type: "bar", data: trend.map(function (m) { return m.records; }) },
      { name: table.getAttribute("data-minutes"), type: "line", yAxisIndex: 1, data: trend.map(function (m) { return m.minutes; }) }
    ]
  });
  document.body.dataset.chart = "drawn";
  window.addEventListener("resize", function () { chart.resize(); });
})();
