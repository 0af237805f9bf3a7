// Test harness for hwsim_pe (tests/rtl/cocotb_pe.py). Not part of the RTL deliverable.
// Six PE instances (signedness x accumulator width x policy) see the same stimulus, which
// streams from a vector memory filled by $readmemh("pe_vectors.hex") when mem_load is high.
// Vector word: [49] load, [48] en, [47:16] bias (32 bits, low ACC_BITS used), [15:8] a, [7:0] w.
`default_nettype none

module tb_pe #(
    parameter integer DEPTH = 262144
) (
    input  wire         clk,
    input  wire         rst,
    input  wire         mem_load,   // pulse: (re)load pe_vectors.hex
    input  wire         go,         // stream one vector per cycle while high
    input  wire [31:0]  n_vec,      // number of valid vector words
    output reg  [31:0]  idx,        // vectors applied so far
    output reg          applied,    // a vector was applied at the last edge
    output wire [203:0] mon         // per instance i: {sticky, ovf, acc (sign-extended to 32)}
);
    reg [49:0] mem [0:DEPTH-1];
    always @(posedge clk) begin
        if (mem_load) $readmemh("pe_vectors.hex", mem);
    end

    wire        fire = go && (idx < n_vec);
    wire [49:0] v    = fire ? mem[idx[17:0]] : 50'd0;
    wire        load = v[49];
    wire        en   = v[48];
    wire [31:0] bias = v[47:16];
    wire [7:0]  a    = v[15:8];
    wire [7:0]  w    = v[7:0];

    always @(posedge clk) begin
        if (rst) begin
            idx     <= 32'd0;
            applied <= 1'b0;
        end else begin
            applied <= fire;
            if (fire) idx <= idx + 32'd1;
        end
    end

    // Instance i: {A_SIGNED, W_SIGNED, ACC_BITS, SATURATE}
    //   0: s s 32 wrap   1: s s 32 sat   2: s s 18 wrap   3: s s 18 sat
    //   4: u s 20 sat    5: u u 16 wrap
    genvar gi;
    generate
        for (gi = 0; gi < 6; gi = gi + 1) begin : g_pe
            localparam integer AS  = (gi >= 4) ? 0 : 1;
            localparam integer WS  = (gi == 5) ? 0 : 1;
            localparam integer AB  = (gi < 2) ? 32 : ((gi < 4) ? 18 : ((gi == 4) ? 20 : 16));
            localparam integer SAT = (gi == 1 || gi == 3 || gi == 4) ? 1 : 0;
            wire [AB-1:0] acc;
            wire          ovf;
            wire          st;
            hwsim_pe #(
                .A_BITS(8), .W_BITS(8), .A_SIGNED(AS), .W_SIGNED(WS), .ACC_BITS(AB),
                .SATURATE(SAT)
            ) u_pe (
                .clk(clk), .rst(rst), .load(load), .en(en), .bias(bias[AB-1:0]), .a(a), .w(w),
                .acc(acc), .overflow(ovf), .overflow_sticky(st)
            );
            wire signed [31:0] accx = $signed(acc);
            assign mon[34*gi +: 34] = {st, ovf, accx};
        end
    endgenerate
endmodule

`default_nettype wire
