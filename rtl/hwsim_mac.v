// hwsim_mac -- one combinational MAC step of the accumulator (specs/arithmetic.md §7).
//
//   s       = acc_in + a * w          exact: operands sign- or zero-extended per A_SIGNED /
//                                     W_SIGNED, sum computed one bit wider than needed
//   overflow = s outside the signed ACC_BITS range [-2^(ACC_BITS-1), 2^(ACC_BITS-1) - 1]
//   acc_out = wrap_to_bits(s, ACC_BITS)        when SATURATE == 0  (two's complement wrap)
//           = saturate_to_bits(s, ACC_BITS)    when SATURATE == 1  (clamp to the range)
//
// Equals one iteration of hwsim.arith.accumulate(bias, products, ACC_BITS, policy) for
// policy "wrap" / "saturate"; policy "error" is the wrap datapath plus the overflow flag
// (the controller stops on it). Purely combinational; the registers live in the callers
// (hwsim_pe, hwsim_systolic_ws).
`default_nettype none

module hwsim_mac #(
    parameter integer A_BITS   = 8,   // activation operand width, >= 2
    parameter integer W_BITS   = 8,   // weight operand width, >= 2
    parameter integer A_SIGNED = 1,   // 1: a is two's complement, 0: a is unsigned
    parameter integer W_SIGNED = 1,   // 1: w is two's complement, 0: w is unsigned
    parameter integer ACC_BITS = 32,  // accumulator width, 2..32 (§7: at most 32)
    parameter integer SATURATE = 0    // 0: wrap, 1: saturate (§7 overflow policy)
) (
    input  wire [A_BITS-1:0]   a,
    input  wire [W_BITS-1:0]   w,
    input  wire [ACC_BITS-1:0] acc_in,    // two's complement accumulator value
    output wire [ACC_BITS-1:0] acc_out,   // policy(acc_in + a*w)
    output wire                overflow   // this addition left the ACC_BITS range
);
    localparam integer P_BITS = A_BITS + W_BITS + 2;
    localparam integer S_BITS = ((ACC_BITS > P_BITS) ? ACC_BITS : P_BITS) + 1;

    wire a_sign = (A_SIGNED != 0) & a[A_BITS-1];
    wire w_sign = (W_SIGNED != 0) & w[W_BITS-1];
    wire signed [A_BITS:0]   a_ext = {a_sign, a};
    wire signed [W_BITS:0]   w_ext = {w_sign, w};
    wire signed [P_BITS-1:0] prod  = a_ext * w_ext;

    wire signed [S_BITS-1:0] sum =
        {{(S_BITS - ACC_BITS){acc_in[ACC_BITS-1]}}, acc_in} +
        {{(S_BITS - P_BITS){prod[P_BITS-1]}}, prod};

    // In range iff the bits from ACC_BITS-1 upwards are all equal (a valid sign extension).
    wire [S_BITS-ACC_BITS:0] top = sum[S_BITS-1:ACC_BITS-1];
    assign overflow = ~((&top) | ~(|top));

    wire [ACC_BITS-1:0] acc_max = {1'b0, {(ACC_BITS-1){1'b1}}};
    wire [ACC_BITS-1:0] acc_min = {1'b1, {(ACC_BITS-1){1'b0}}};
    assign acc_out = ((SATURATE != 0) && overflow) ? (sum[S_BITS-1] ? acc_min : acc_max)
                                                   : sum[ACC_BITS-1:0];
endmodule

`default_nettype wire
