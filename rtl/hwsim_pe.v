// hwsim_pe -- processing element: multiply into a bias-loaded accumulator
// (specs/arithmetic.md §7, specs/rtl.md §R2).
//
// One rising edge of clk, with the inputs sampled at that edge:
//   rst                   : acc <= 0, overflow <= 0, overflow_sticky <= 0
//   load & en             : acc <= policy(bias + a*w)   (first MAC of a dot product)
//   load & !en            : acc <= bias
//   !load & en            : acc <= policy(acc + a*w)
//   !load & !en           : acc holds
// overflow is 1 for the cycle after an addition that left the ACC_BITS range (one §7
// overflow event); overflow_sticky ORs the events since the last load. A dot product
// bias + sum_k a_k*w_k driven as load&en, en, en, ... equals
// hwsim.arith.accumulate(bias, a*w, ACC_BITS, "wrap" | "saturate").
`default_nettype none

module hwsim_pe #(
    parameter integer A_BITS   = 8,
    parameter integer W_BITS   = 8,
    parameter integer A_SIGNED = 1,
    parameter integer W_SIGNED = 1,
    parameter integer ACC_BITS = 32,
    parameter integer SATURATE = 0
) (
    input  wire                clk,
    input  wire                rst,              // synchronous, active high
    input  wire                load,             // start a new accumulation from bias
    input  wire                en,               // perform one MAC
    input  wire [ACC_BITS-1:0] bias,             // folded bias (two's complement)
    input  wire [A_BITS-1:0]   a,
    input  wire [W_BITS-1:0]   w,
    output reg  [ACC_BITS-1:0] acc,
    output reg                 overflow,
    output reg                 overflow_sticky
);
    wire [ACC_BITS-1:0] base = load ? bias : acc;
    wire [ACC_BITS-1:0] nxt;
    wire                ovf;

    hwsim_mac #(
        .A_BITS(A_BITS), .W_BITS(W_BITS), .A_SIGNED(A_SIGNED), .W_SIGNED(W_SIGNED),
        .ACC_BITS(ACC_BITS), .SATURATE(SATURATE)
    ) u_mac (
        .a(a), .w(w), .acc_in(base), .acc_out(nxt), .overflow(ovf)
    );

    always @(posedge clk) begin
        if (rst) begin
            acc             <= {ACC_BITS{1'b0}};
            overflow        <= 1'b0;
            overflow_sticky <= 1'b0;
        end else begin
            if (en) begin
                acc <= nxt;
            end else if (load) begin
                acc <= bias;
            end
            overflow        <= en & ovf;
            overflow_sticky <= (overflow_sticky & ~load) | (en & ovf);
        end
    end
endmodule

`default_nettype wire
