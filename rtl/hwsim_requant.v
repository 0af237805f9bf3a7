// hwsim_requant -- pipelined requantization unit (specs/arithmetic.md §6, §8; rtl.md §R3).
//
// Implements the integer modes of hwsim.arith.requantize, selected per input by ports
// (codes = hwsim.arith.jit.MODE_CODES / ROUNDING_CODES):
//   mode 0 tflite        y = RDBPOT(SRDHM(wrap32(acc << l), M), r)   two roundings (§8.1)
//                        with e = 31 - shift, l = max(e, 0), r = max(-e, 0)
//   mode 1 tflite_single y = (acc*M + 2^(shift-1)) >> shift          half up, once (§8.2)
//   mode 3 dyadic,
//   mode 4 custom        y = rounding_shift_right(acc*m, shift, rounding)  (§6, §8.4, §8.5)
//   mode 2 (float32, ONNX Runtime) is not implemented in RTL: cfg_err is raised, out = 0.
// then the output stage (§8.6): v = y + zero_point;
//   out_wrap = 0: out = clamp(v, act_min, act_max)
//   out_wrap = 1: out = clamp(wrap_to_bits(v, OUT_BITS, OUT_SIGNED), act_min, act_max)
// multiplier is the right-shift form of RequantParams: value = multiplier * 2^-shift,
// multiplier in [0, 2^31), shift in [0, 62] (tflite modes: [1, 62]).
//
// Pipeline: latency L = 3 register stages. Cycle c is the clock period that ends with
// rising edge c. An input presented during cycle c (sampled by edge c) has its result on
// out/out_valid during cycle c+3 (registered by edge c+2): specs/cycle_model.md §C4 with
// L = 3. One input per cycle, no back-pressure; every per-input field travels with its data.
//   stage 1: operand select (tflite left shift + wrap32), 32x31 product
//   stage 2: first rounding: SRDHM (tflite) or the rounding right shift (other modes)
//   stage 3: tflite second rounding (RDBPOT), + zero point, wrap, clamp
`default_nettype none

module hwsim_requant #(
    parameter integer ACC_BITS   = 32,  // accumulator input width, 2..32 (two's complement)
    parameter integer OUT_BITS   = 8,   // output code width, 2..32
    parameter integer OUT_SIGNED = 1    // 1: signed output format, 0: unsigned
) (
    input  wire                clk,
    input  wire                rst,         // synchronous, active high: clears the valids
    input  wire                in_valid,
    input  wire [ACC_BITS-1:0] acc,
    input  wire [2:0]          mode,        // 0 tflite, 1 tflite_single, 3 dyadic, 4 custom
    input  wire [2:0]          rounding,    // 0 half_up, 1 half_away, 2 half_even, 3 floor,
                                            // 4 toward_zero (modes 3 and 4 only)
    input  wire [30:0]         multiplier,  // m (dyadic/custom) or M (tflite), < 2^31
    input  wire [5:0]          shift,       // right shift n in [0, 62]
    input  wire                out_wrap,    // 1: wrap the output stage, 0: saturate
    input  wire [OUT_BITS-1:0] zero_point,  // output-format code
    input  wire [OUT_BITS-1:0] act_min,     // output-format code, act_min <= act_max
    input  wire [OUT_BITS-1:0] act_max,
    output reg                 out_valid,
    output reg  [OUT_BITS-1:0] out,
    output reg                 cfg_err      // with out_valid: the input used mode 2 or > 4
);
    localparam integer W = 66;  // internal exact width: |acc*m| < 2^62, + zero point

    localparam [2:0] M_TFLITE = 3'd0;
    localparam [2:0] M_SINGLE = 3'd1;
    localparam [2:0] M_DYADIC = 3'd3;
    localparam [2:0] M_CUSTOM = 3'd4;
    localparam [2:0] R_HALF_UP = 3'd0;
    localparam [2:0] R_HALF_AWAY = 3'd1;
    localparam [2:0] R_HALF_EVEN = 3'd2;
    localparam [2:0] R_TOWARD_ZERO = 3'd4;

    // §6: exact x / 2^sh rounded with mode rnd (codes as ROUNDING_CODES; floor otherwise).
    function signed [W-1:0] round_shift;
        input signed [W-1:0] x;
        input [5:0] sh;
        input [2:0] rnd;
        reg signed [W-1:0] q;
        reg [W-1:0] r;
        reg [W-1:0] half;
        reg inc;
        begin
            q    = x >>> sh;
            r    = x & ~({W{1'b1}} << sh);
            half = (sh == 6'd0) ? {W{1'b0}} : ({{(W-1){1'b0}}, 1'b1} << (sh - 6'd1));
            case (rnd)
                R_HALF_UP:     inc = (sh != 6'd0) && (r >= half);
                R_HALF_AWAY:   inc = (sh != 6'd0) && ((r > half) || ((r == half) && !x[W-1]));
                R_HALF_EVEN:   inc = (sh != 6'd0) && ((r > half) || ((r == half) && q[0]));
                R_TOWARD_ZERO: inc = (r != {W{1'b0}}) && x[W-1];
                default:       inc = 1'b0;
            endcase
            round_shift = q + {{(W-1){1'b0}}, inc};
        end
    endfunction

    // ---------------------------------------------------------------- stage 1
    wire signed [31:0] acc32;                           // acc sign-extended to int32
    generate
        if (ACC_BITS < 32) begin : g_acc_ext
            assign acc32 = {{(32-ACC_BITS){acc[ACC_BITS-1]}}, acc};
        end else begin : g_acc_full
            assign acc32 = acc;
        end
    endgenerate
    wire               is_tfl = (mode == M_TFLITE);
    // tflite: e = 31 - shift; left = max(e, 0) = 31 - shift for shift < 31.
    wire [5:0]         left  = (shift < 6'd31) ? (6'd31 - shift) : 6'd0;
    wire [5:0]         right = (shift > 6'd31) ? (shift - 6'd31) : 6'd0;
    wire [31:0]        x_tfl = acc32 << left;            // wrap32(acc << left)
    wire signed [32:0] x1    = is_tfl ? {x_tfl[31], x_tfl} : {acc32[31], acc32};
    wire signed [W-1:0] prod = $signed({{(W-33){x1[32]}}, x1}) *
                               $signed({{(W-31){1'b0}}, multiplier});
    wire mode_ok = (mode == M_TFLITE) || (mode == M_SINGLE) ||
                   (mode == M_DYADIC) || (mode == M_CUSTOM);

    reg                 v1, tfl1, err1, wrap1;
    reg signed [W-1:0]  p1;
    reg [5:0]           sh1, right1;
    reg [2:0]           rnd1;
    reg [OUT_BITS-1:0]  zp1, lo1, hi1;

    // ---------------------------------------------------------------- stage 2
    // tflite SRDHM = floor((x*M + 2^30) / 2^31) (half up at 31 bits; M < 2^31 so the
    // INT32_MIN*INT32_MIN saturation case cannot occur); tflite_single: half up at shift;
    // dyadic/custom: the selected rounding at shift.
    wire [5:0] sh_a  = tfl1 ? 6'd31 : sh1;
    wire [2:0] rnd_a = (tfl1 || (rnd1 == R_HALF_UP)) ? R_HALF_UP : rnd1;
    reg                 v2, tfl2, err2, wrap2;
    reg signed [W-1:0]  y2;
    reg [5:0]           right2;
    reg [OUT_BITS-1:0]  zp2, lo2, hi2;

    // ---------------------------------------------------------------- stage 3
    function signed [W-1:0] ext_code;  // output-format code -> exact integer
        input [OUT_BITS-1:0] c;
        begin
            if (OUT_SIGNED != 0) ext_code = {{(W-OUT_BITS){c[OUT_BITS-1]}}, c};
            else                 ext_code = {{(W-OUT_BITS){1'b0}}, c};
        end
    endfunction

    wire signed [W-1:0] y3  = tfl2 ? round_shift(y2, right2, R_HALF_AWAY) : y2;
    wire signed [W-1:0] v3  = y3 + ext_code(zp2);
    wire signed [W-1:0] vw  = ext_code(v3[OUT_BITS-1:0]);   // wrap_to_bits(v, OUT_BITS)
    wire signed [W-1:0] vs  = wrap2 ? vw : v3;
    wire signed [W-1:0] lo3 = ext_code(lo2);
    wire signed [W-1:0] hi3 = ext_code(hi2);
    // c3 lies in [act_min, act_max]: its bits above OUT_BITS are the format's extension.
    /* verilator lint_off UNUSEDSIGNAL */
    wire signed [W-1:0] c3  = (vs < lo3) ? lo3 : ((vs > hi3) ? hi3 : vs);
    /* verilator lint_on UNUSEDSIGNAL */

    always @(posedge clk) begin
        if (rst) begin
            v1 <= 1'b0;
            v2 <= 1'b0;
            out_valid <= 1'b0;
        end else begin
            v1 <= in_valid;
            v2 <= v1;
            out_valid <= v2;
        end
        // stage 1
        tfl1   <= is_tfl;
        err1   <= ~mode_ok;
        wrap1  <= out_wrap;
        p1     <= prod;
        sh1    <= shift;
        right1 <= right;
        rnd1   <= (mode == M_SINGLE) ? R_HALF_UP : rounding;
        zp1    <= zero_point;
        lo1    <= act_min;
        hi1    <= act_max;
        // stage 2
        tfl2   <= tfl1;
        err2   <= err1;
        wrap2  <= wrap1;
        y2     <= round_shift(p1, sh_a, rnd_a);
        right2 <= right1;
        zp2    <= zp1;
        lo2    <= lo1;
        hi2    <= hi1;
        // stage 3
        cfg_err <= err2;
        out     <= err2 ? {OUT_BITS{1'b0}} : c3[OUT_BITS-1:0];
    end
endmodule

`default_nettype wire
