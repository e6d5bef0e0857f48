// Our price against the cheapest confirmed competitor; price changes drawn as larger points.
document.addEventListener("DOMContentLoaded", () => {
  const canvas = document.getElementById("pr-history-chart");
  const source = document.getElementById("pr-history-data");
  if (!canvas || !source || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const won = (v) => (v === null || v === undefined ? "—" : v.toLocaleString("ko-KR") + "원");
  new Chart(canvas, {
    type: "line",
    data: {
      labels: data.labels,
      datasets: [
        {
          label: "우리 가격",
          data: data.ours,
          stepped: true,
          borderColor: "#2f5bea",
          backgroundColor: "#2f5bea",
          pointRadius: data.changes.map((c) => (c ? 6 : 2)),
          pointStyle: data.changes.map((c) => (c ? "rectRot" : "circle")),
        },
        {
          label: "가장 싼 확정 경쟁가",
          data: data.competitor,
          spanGaps: false,
          borderColor: "#b76e00",
          backgroundColor: "#b76e00",
          borderDash: [5, 4],
          pointRadius: 2,
        },
      ],
    },
    options: {
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      scales: { y: { ticks: { callback: (v) => won(v) } } },
      plugins: {
        tooltip: {
          callbacks: {
            label: (ctx) => `${ctx.dataset.label}: ${won(ctx.parsed.y)}`,
            afterBody: (items) => (items.length && data.changes[items[0].dataIndex] ? "● 가격 변경" : ""),
          },
        },
      },
    },
  });
});
