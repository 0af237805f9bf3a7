// hwsim_systolic_ws -- weight-stationary systolic array ROWS x COLS with a requantization
// unit under every column (specs/cycle_model.md §C2-§C4 "ws", arithmetic.md §7-§8,
// rtl.md §R4).
//
// Cycle c is the clock period ending with rising edge c; "at cycle c" = the inputs are
// presented during c and the result is in a register at the end of c (cycle_model.md §C3).
// PE(r, c): row r in [0, ROWS) top to bottom, column c in [0, COLS) left to right.
//
//   weights  w_shift = 1 during a cycle: every PE row takes the row above, row 0 takes w_in.
//            R cycles of w_shift load a tile (feed the bottom row first).
//   inputs   a_in[r] / a_valid[r] enter PE(r, 0) and move one column right per cycle; the
//            driver skews them (row r of streamed index t at cycle s + t + r).
//   psums    top_psum[c] / top_valid[c] / top_last[c] enter PE(0, c) (bias or running
//            accumulator, at cycle s + t + c); PE(r, c) adds a*w (policy after the
//            addition, hwsim_mac) in the cycle its activation and partial sum meet and
//            passes the sum down; the bottom register is acc_out[c] (visible the cycle
//            after it leaves row ROWS-1), with acc_ovf_cnt[c] = overflow events of that
//            sum along the column (§7).
//   requant  a bottom sum with top_last set enters hwsim_requant of its column; the code
//            appears on q_out[c] / q_valid[c] L = 3 cycles later: valid at t_last + 1 + 3.
//   edges    a_out / a_out_valid (right edge) and w_out (bottom row weights) chain arrays.
//   errors   sched_err (sticky) = a partial sum met no valid activation (driver skew bug);
//            q_cfg_err[c] = the requant unit got an unsupported mode.
// The rq_* configuration ports are sampled when a sum enters a requant unit.
`default_nettype none

module hwsim_systolic_ws #(
    parameter integer ROWS       = 4,
    parameter integer COLS       = 4,
    parameter integer A_BITS     = 8,
    parameter integer W_BITS     = 8,
    parameter integer A_SIGNED   = 1,
    parameter integer W_SIGNED   = 1,
    parameter integer ACC_BITS   = 32,   // 2..32
    parameter integer SATURATE   = 0,    // accumulator policy: 0 wrap, 1 saturate
    parameter integer OUT_BITS   = 8,
    parameter integer OUT_SIGNED = 1,
    parameter integer CNT_BITS   = 8     // width of the per-sum overflow event counter
) (
    input  wire                       clk,
    input  wire                       rst,
    // weight preload (shift down from the top)
    input  wire                       w_shift,
    input  wire [COLS*W_BITS-1:0]     w_in,
    // activations, left edge, one per row
    input  wire [ROWS-1:0]            a_valid,
    input  wire [ROWS*A_BITS-1:0]     a_in,
    // partial sums into the column tops
    input  wire [COLS-1:0]            top_valid,
    input  wire [COLS-1:0]            top_last,
    input  wire [COLS*ACC_BITS-1:0]   top_psum,
    // accumulators leaving the bottom row
    output wire [COLS-1:0]            acc_valid,
    output wire [COLS-1:0]            acc_last,
    output wire [COLS*ACC_BITS-1:0]   acc_out,
    output wire [COLS*CNT_BITS-1:0]   acc_ovf_cnt,
    // requantization configuration (hwsim_requant ports; per column multiplier and shift)
    input  wire [2:0]                 rq_mode,
    input  wire [2:0]                 rq_rounding,
    input  wire                       rq_wrap,
    input  wire [COLS*31-1:0]         rq_multiplier,
    input  wire [COLS*6-1:0]          rq_shift,
    input  wire [OUT_BITS-1:0]        rq_zero_point,
    input  wire [OUT_BITS-1:0]        rq_act_min,
    input  wire [OUT_BITS-1:0]        rq_act_max,
    // requantized outputs
    output wire [COLS-1:0]            q_valid,
    output wire [COLS*OUT_BITS-1:0]   q_out,
    output wire [COLS-1:0]            q_cfg_err,
    output reg                        sched_err,
    // right and bottom edges, for cascading arrays: activations leaving column COLS-1
    // (one cycle after they were used there) and the weights of row ROWS-1 (w_shift chain)
    output wire [ROWS-1:0]            a_out_valid,
    output wire [ROWS*A_BITS-1:0]     a_out,
    output wire [COLS*W_BITS-1:0]     w_out
);
    localparam integer NPE = ROWS * COLS;

    // Registered state of every PE, flattened with index p = r*COLS + c.
    wire [NPE*A_BITS-1:0]   a_q;
    wire [NPE-1:0]          av_q;
    wire [NPE*W_BITS-1:0]   w_q;
    wire [NPE*ACC_BITS-1:0] ps_q;
    wire [NPE-1:0]          pv_q;
    wire [NPE-1:0]          pl_q;
    wire [NPE*CNT_BITS-1:0] pc_q;
    wire [NPE-1:0]          err_now;

    genvar r, c;
    generate
        for (r = 0; r < ROWS; r = r + 1) begin : g_row
            for (c = 0; c < COLS; c = c + 1) begin : g_col
                localparam integer P = r * COLS + c;
                // Operands arriving at this PE in the current cycle.
                wire [A_BITS-1:0]   a_i;
                wire                av_i;
                wire [W_BITS-1:0]   w_i;
                wire [ACC_BITS-1:0] ps_i;
                wire                pv_i;
                wire                pl_i;
                wire [CNT_BITS-1:0] pc_i;
                if (c == 0) begin : g_left
                    assign a_i  = a_in[r*A_BITS +: A_BITS];
                    assign av_i = a_valid[r];
                end else begin : g_inner_a
                    assign a_i  = a_q[(P-1)*A_BITS +: A_BITS];
                    assign av_i = av_q[P-1];
                end
                if (r == 0) begin : g_top
                    assign w_i  = w_in[c*W_BITS +: W_BITS];
                    assign ps_i = top_psum[c*ACC_BITS +: ACC_BITS];
                    assign pv_i = top_valid[c];
                    assign pl_i = top_last[c];
                    assign pc_i = {CNT_BITS{1'b0}};
                end else begin : g_inner_p
                    assign w_i  = w_q[(P-COLS)*W_BITS +: W_BITS];
                    assign ps_i = ps_q[(P-COLS)*ACC_BITS +: ACC_BITS];
                    assign pv_i = pv_q[P-COLS];
                    assign pl_i = pl_q[P-COLS];
                    assign pc_i = pc_q[(P-COLS)*CNT_BITS +: CNT_BITS];
                end

                reg [A_BITS-1:0]   a_r;
                reg                av_r;
                reg [W_BITS-1:0]   w_r;
                reg [ACC_BITS-1:0] ps_r;
                reg                pv_r;
                reg                pl_r;
                reg [CNT_BITS-1:0] pc_r;
                wire [ACC_BITS-1:0] sum;
                wire                ovf;

                hwsim_mac #(
                    .A_BITS(A_BITS), .W_BITS(W_BITS), .A_SIGNED(A_SIGNED),
                    .W_SIGNED(W_SIGNED), .ACC_BITS(ACC_BITS), .SATURATE(SATURATE)
                ) u_mac (
                    .a(a_i), .w(w_r), .acc_in(ps_i), .acc_out(sum), .overflow(ovf)
                );

                always @(posedge clk) begin
                    if (rst) begin
                        av_r <= 1'b0;
                        pv_r <= 1'b0;
                        pl_r <= 1'b0;
                    end else begin
                        av_r <= av_i;
                        pv_r <= pv_i;
                        pl_r <= pl_i & pv_i;
                    end
                    a_r <= a_i;
                    if (w_shift) w_r <= w_i;
                    if (pv_i) begin
                        ps_r <= sum;
                        pc_r <= pc_i + {{(CNT_BITS-1){1'b0}}, ovf};
                    end
                end

                assign a_q[P*A_BITS +: A_BITS]       = a_r;
                assign av_q[P]                       = av_r;
                assign w_q[P*W_BITS +: W_BITS]       = w_r;
                assign ps_q[P*ACC_BITS +: ACC_BITS]  = ps_r;
                assign pv_q[P]                       = pv_r;
                assign pl_q[P]                       = pl_r;
                assign pc_q[P*CNT_BITS +: CNT_BITS]  = pc_r;
                assign err_now[P]                    = pv_i & ~av_i;
            end
        end

        for (r = 0; r < ROWS; r = r + 1) begin : g_right
            localparam integer E = r * COLS + COLS - 1;
            assign a_out_valid[r]              = av_q[E];
            assign a_out[r*A_BITS +: A_BITS]   = a_q[E*A_BITS +: A_BITS];
        end

        for (c = 0; c < COLS; c = c + 1) begin : g_out
            localparam integer B = (ROWS - 1) * COLS + c;
            assign w_out[c*W_BITS +: W_BITS]   = w_q[B*W_BITS +: W_BITS];
            assign acc_valid[c] = pv_q[B];
            assign acc_last[c]  = pl_q[B];
            assign acc_out[c*ACC_BITS +: ACC_BITS]    = ps_q[B*ACC_BITS +: ACC_BITS];
            assign acc_ovf_cnt[c*CNT_BITS +: CNT_BITS] = pc_q[B*CNT_BITS +: CNT_BITS];

            hwsim_requant #(
                .ACC_BITS(ACC_BITS), .OUT_BITS(OUT_BITS), .OUT_SIGNED(OUT_SIGNED)
            ) u_requant (
                .clk(clk), .rst(rst), .in_valid(pv_q[B] & pl_q[B]),
                .acc(ps_q[B*ACC_BITS +: ACC_BITS]), .mode(rq_mode), .rounding(rq_rounding),
                .multiplier(rq_multiplier[c*31 +: 31]), .shift(rq_shift[c*6 +: 6]),
                .out_wrap(rq_wrap), .zero_point(rq_zero_point), .act_min(rq_act_min),
                .act_max(rq_act_max), .out_valid(q_valid[c]),
                .out(q_out[c*OUT_BITS +: OUT_BITS]), .cfg_err(q_cfg_err[c])
            );
        end
    endgenerate

    always @(posedge clk) begin
        if (rst) sched_err <= 1'b0;
        else     sched_err <= sched_err | (|err_now);
    end
endmodule

`default_nettype wire
