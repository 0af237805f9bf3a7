// Test harness for hwsim_requant (tests/rtl/cocotb_requant.py). Not part of the RTL deliverable.
// Four requant units (int8, uint8, int4, int32 outputs) see the same accumulator, multiplier,
// shift, mode, rounding and out_wrap; each has its own zero point and clamp range. Vectors
// stream from a memory filled by $readmemh("requant_vectors.hex") on a mem_load pulse.
// Vector word (232 bits, MSB first): acc 32 | multiplier 31 | shift 6 | mode 3 | rounding 3 |
// out_wrap 1 | int8 zp,lo,hi 3x8 | uint8 zp,lo,hi 3x8 | int4 zp,lo,hi 3x4 | int32 zp,lo,hi 3x32.
`default_nettype none

module tb_requant #(
    parameter integer DEPTH = 131072
) (
    input  wire        clk,
    input  wire        rst,
    input  wire        mem_load,
    input  wire        go,
    input  wire [31:0] n_vec,
    output reg  [31:0] idx,         // vectors applied so far
    output reg         applied,     // a vector entered the units at the last edge
    output wire        out_valid,
    output wire        cfg_err,
    output wire [51:0] mon          // {int32 out, int4 out, uint8 out, int8 out}
);
    reg [231:0] mem [0:DEPTH-1];
    always @(posedge clk) begin
        if (mem_load) $readmemh("requant_vectors.hex", mem);
    end

    wire         fire = go && (idx < n_vec);
    wire [231:0] v    = mem[idx[16:0]];

    always @(posedge clk) begin
        if (rst) begin
            idx     <= 32'd0;
            applied <= 1'b0;
        end else begin
            applied <= fire;
            if (fire) idx <= idx + 32'd1;
        end
    end

    wire [31:0] acc   = v[231:200];
    wire [30:0] mult  = v[199:169];
    wire [5:0]  shift = v[168:163];
    wire [2:0]  mode  = v[162:160];
    wire [2:0]  rnd   = v[159:157];
    wire        wrap  = v[156];

    wire [3:0] ov;
    wire [3:0] oe;
    hwsim_requant #(.ACC_BITS(32), .OUT_BITS(8), .OUT_SIGNED(1)) u_int8 (
        .clk(clk), .rst(rst), .in_valid(fire), .acc(acc), .mode(mode), .rounding(rnd),
        .multiplier(mult), .shift(shift), .out_wrap(wrap),
        .zero_point(v[155:148]), .act_min(v[147:140]), .act_max(v[139:132]),
        .out_valid(ov[0]), .out(mon[7:0]), .cfg_err(oe[0]));
    hwsim_requant #(.ACC_BITS(32), .OUT_BITS(8), .OUT_SIGNED(0)) u_uint8 (
        .clk(clk), .rst(rst), .in_valid(fire), .acc(acc), .mode(mode), .rounding(rnd),
        .multiplier(mult), .shift(shift), .out_wrap(wrap),
        .zero_point(v[131:124]), .act_min(v[123:116]), .act_max(v[115:108]),
        .out_valid(ov[1]), .out(mon[15:8]), .cfg_err(oe[1]));
    hwsim_requant #(.ACC_BITS(32), .OUT_BITS(4), .OUT_SIGNED(1)) u_int4 (
        .clk(clk), .rst(rst), .in_valid(fire), .acc(acc), .mode(mode), .rounding(rnd),
        .multiplier(mult), .shift(shift), .out_wrap(wrap),
        .zero_point(v[107:104]), .act_min(v[103:100]), .act_max(v[99:96]),
        .out_valid(ov[2]), .out(mon[19:16]), .cfg_err(oe[2]));
    hwsim_requant #(.ACC_BITS(32), .OUT_BITS(32), .OUT_SIGNED(1)) u_int32 (
        .clk(clk), .rst(rst), .in_valid(fire), .acc(acc), .mode(mode), .rounding(rnd),
        .multiplier(mult), .shift(shift), .out_wrap(wrap),
        .zero_point(v[95:64]), .act_min(v[63:32]), .act_max(v[31:0]),
        .out_valid(ov[3]), .out(mon[51:20]), .cfg_err(oe[3]));

    assign out_valid = &ov;
    assign cfg_err   = |(oe & ov);
endmodule

`default_nettype wire
