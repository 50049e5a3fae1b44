// AudioWorklet: microphone samples -> 16 kHz mono Int16 PCM chunks posted to the page.
// Downsampling averages the input samples that fall into each output sample (a box
// filter), which is enough anti-aliasing for speech going to Whisper.
"use strict";

const CHUNK_SAMPLES = 320; // 20 ms at 16 kHz

class Pcm16k extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.step = sampleRate / ((options.processorOptions || {}).targetRate || 16000);
    this.acc = 0;
    this.count = 0;
    this.pos = 0;
    this.out = new Int16Array(CHUNK_SAMPLES);
    this.n = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || !input.length) return true;
    const ch = input[0];
    for (let i = 0; i < ch.length; i++) {
      this.acc += ch[i];
      this.count += 1;
      this.pos += 1;
      if (this.pos >= this.step) {
        this.pos -= this.step;
        const s = Math.max(-1, Math.min(1, this.acc / this.count));
        this.out[this.n++] = s < 0 ? s * 32768 : s * 32767;
        this.acc = 0;
        this.count = 0;
        if (this.n === CHUNK_SAMPLES) {
          this.port.postMessage(this.out.buffer, [this.out.buffer]);
          this.out = new Int16Array(CHUNK_SAMPLES);
          this.n = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("pcm16k", Pcm16k);
