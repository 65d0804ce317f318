// A training curve drawn on a <canvas>: one point per step as job events arrive, redrawn whole each time (a few
// hundred points at most), at the screen's pixel density and the canvas's current width.

const PAD = {left: 52, right: 12, top: 12, bottom: 28};

export class Curve {
  constructor(canvas, summary) {
    this.canvas = canvas;
    this.summary = summary;
    this.reset("loss");
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  reset(metric, totalSteps = 0) {
    this.metric = metric;
    this.totalSteps = totalSteps;
    this.points = new Map(); // step -> value: an event repeats a step when only its message changed
    this.draw();
  }

  add(step, value, totalSteps) {
    this.totalSteps = Math.max(this.totalSteps, totalSteps || 0);
    this.points.set(step, value);
    this.draw();
  }

  draw() {
    const {canvas} = this;
    const scale = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 300;
    const height = canvas.clientHeight || 160;
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    canvas.dataset.points = String(this.points.size);
    const context = canvas.getContext("2d");
    context.setTransform(scale, 0, 0, scale, 0, 0);
    context.clearRect(0, 0, width, height);
    const style = getComputedStyle(canvas);
    context.font = "11px system-ui, sans-serif";
    context.fillStyle = context.strokeStyle = style.color;
    const plot = {x: PAD.left, y: PAD.top, w: width - PAD.left - PAD.right, h: height - PAD.top - PAD.bottom};
    context.globalAlpha = 0.5;
    context.strokeRect(plot.x, plot.y, plot.w, plot.h);
    context.globalAlpha = 1;
    const steps = [...this.points.keys()];
    const values = [...this.points.values()];
    if (!steps.length) {
      context.fillText(`waiting for the first ${this.metric}…`, plot.x + 8, plot.y + plot.h / 2);
      this.summary.textContent = `No ${this.metric} yet.`;
      return;
    }
    const lastStep = Math.max(this.totalSteps, ...steps, 1);
    let low = Math.min(...values);
    let high = Math.max(...values);
    if (high === low) [low, high] = [low - 0.5, high + 0.5];
    const x = (step) => plot.x + (step / lastStep) * plot.w;
    const y = (value) => plot.y + (1 - (value - low) / (high - low)) * plot.h;
    context.fillText(high.toPrecision(4), 4, plot.y + 10);
    context.fillText(low.toPrecision(4), 4, plot.y + plot.h);
    context.fillText(`step ${lastStep}`, plot.x + plot.w - 50, height - 8);
    context.fillText("0", plot.x, height - 8);
    context.strokeStyle = context.fillStyle = style.getPropertyValue("--accent") || "#0b63c4";
    context.lineWidth = 2;
    context.beginPath();
    const ordered = steps.map((step) => [step, this.points.get(step)]).sort((a, b) => a[0] - b[0]);
    ordered.forEach(([step, value], index) => (index ? context.lineTo : context.moveTo).call(context, x(step), y(value)));
    context.stroke();
    for (const [step, value] of ordered) context.fillRect(x(step) - 2, y(value) - 2, 4, 4);
    const [lastAt, lastValue] = ordered[ordered.length - 1];
    this.summary.textContent = `${ordered.length} points; ${this.metric} ${lastValue.toPrecision(4)} at step ${lastAt}` +
      ` of ${lastStep}.`;
  }
}
