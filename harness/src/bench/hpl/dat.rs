//! HPL-style input files (HPL.dat / HPL-MxP.dat): the layout HPL users know. effcal reads
//! the problem sizes, block sizes, process mapping and grids, and — when present — the
//! broadcast and look-ahead lines, and runs every combination in HPL's order (grids,
//! then sizes, then block sizes). The other lines (panel factorisation, swapping,
//! equilibration, ...) concern partial pivoting and are read but not used.
//!
//! ```text
//! HPLinpack benchmark input file
//! Innovative Computing Laboratory, University of Tennessee
//! HPL.out      output file name (if any)
//! 6            device out (6=stdout,7=stderr,file)
//! 1            # of problems sizes (N)
//! 16384        Ns
//! 1            # of NBs
//! 512          NBs
//! 0            PMAP process mapping (0=Row-,1=Column-major)
//! 1            # of process grids (P x Q)
//! 1            Ps
//! 2            Qs
//! 16.0         threshold
//! ...          (PFACTs, NBMINs, NDIVs, RFACTs)
//! 1            # of broadcast
//! 0            BCASTs (0=1rg,1=1rM,2=2rg,3=2rM,4=Lng,5=LnM)
//! 1            # of lookahead depth
//! 1            DEPTHs (>=0)
//! ```
//! BCAST 0–3 (the ring variants) run effcal's ring, 4–5 (long / spread-roll) its binomial
//! tree; DEPTH 0 turns look-ahead off, 1 or more gives effcal's depth-1 look-ahead.

use super::bcast::Algorithm;
use super::grid::Pmap;

#[derive(Clone, Debug, PartialEq)]
pub struct Dat {
    pub ns: Vec<usize>,
    pub nbs: Vec<usize>,
    pub pmap: Pmap,
    pub grids: Vec<(usize, usize)>,
    pub threshold: f64,
    pub bcasts: Vec<Algorithm>,
    pub lookaheads: Vec<bool>,
}

/// Parses the text of an HPL.dat; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Dat, String> {
    let lines: Vec<&str> = text.lines().collect();
    let err = |line: usize, what: &str, allowed: &str| {
        let got = lines.get(line).map_or("<missing>", |l| l.trim());
        format!("{file}: line {} ({what}): '{got}' (allowed: {allowed})", line + 1)
    };
    let first = |line: usize| lines.get(line).and_then(|l| l.split_whitespace().next());
    let count = |line: usize, what: &str| -> Result<usize, String> {
        first(line).and_then(|t| t.parse::<usize>().ok()).filter(|&c| (1..=20).contains(&c)).ok_or_else(|| err(line, what, "a count in 1..=20"))
    };
    let values = |line: usize, c: usize, what: &str, allowed: &str, ok: &dyn Fn(usize) -> bool| -> Result<Vec<usize>, String> {
        let toks: Vec<usize> = lines.get(line).map_or(Vec::new(), |l| l.split_whitespace().take(c).filter_map(|t| t.parse().ok()).collect());
        if toks.len() == c && toks.iter().all(|&v| ok(v)) { Ok(toks) } else { Err(err(line, what, allowed)) }
    };
    let nn = count(4, "# of problems sizes (N)")?;
    let ns = values(5, nn, "Ns", "orders of at least 2", &|v| v >= 2)?;
    let nnb = count(6, "# of NBs")?;
    let nbs = values(7, nnb, "NBs", "block sizes of at least 1", &|v| v >= 1)?;
    let pmap = match first(8) {
        Some("0") => Pmap::Row,
        Some("1") => Pmap::Col,
        _ => return Err(err(8, "PMAP process mapping", "0 (row-major) or 1 (column-major)")),
    };
    let ng = count(9, "# of process grids (P x Q)")?;
    let ps = values(10, ng, "Ps", "grid rows of at least 1", &|v| v >= 1)?;
    let qs = values(11, ng, "Qs", "grid columns of at least 1", &|v| v >= 1)?;
    let threshold = first(12).and_then(|t| t.parse::<f64>().ok()).filter(|t| *t > 0.0).ok_or_else(|| err(12, "threshold", "a positive number (HPL-MxP: 16.0)"))?;
    let mut bcasts = vec![Algorithm::Ring];
    let mut lookaheads = vec![true];
    // Lines 14–21 are the panel factorisation choices; 22–25 broadcasts and depths.
    if lines.len() > 22 {
        let nbc = count(21, "# of broadcast")?;
        bcasts = values(22, nbc, "BCASTs", "0-5 (0-3 ring, 4-5 binomial)", &|v| v <= 5)?
            .into_iter()
            .map(|v| if v <= 3 { Algorithm::Ring } else { Algorithm::Binomial })
            .collect();
        bcasts.dedup();
    }
    if lines.len() > 24 {
        let nd = count(23, "# of lookahead depth")?;
        lookaheads = values(24, nd, "DEPTHs", "0 (none) or more (depth 1)", &|_| true)?.into_iter().map(|d| d > 0).collect();
        lookaheads.dedup();
    }
    Ok(Dat { ns, nbs, pmap, grids: ps.into_iter().zip(qs).collect(), threshold, bcasts, lookaheads })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HPL_DAT: &str = "HPLinpack benchmark input file
Innovative Computing Laboratory, University of Tennessee
HPL.out      output file name (if any)
6            device out (6=stdout,7=stderr,file)
2            # of problems sizes (N)
1000 2000    Ns
2            # of NBs
128 256      NBs
1            PMAP process mapping (0=Row-,1=Column-major)
2            # of process grids (P x Q)
1 2          Ps
2 1          Qs
16.0         threshold
1            # of panel fact
2            PFACTs (0=left, 1=Crout, 2=Right)
1            # of recursive stopping criterium
4            NBMINs (>= 1)
1            # of panels in recursion
2            NDIVs
1            # of recursive panel fact.
1            RFACTs (0=left, 1=Crout, 2=Right)
2            # of broadcast
0 4          BCASTs (0=1rg,1=1rM,2=2rg,3=2rM,4=Lng,5=LnM)
1            # of lookahead depth
0            DEPTHs (>=0)
2            SWAP (0=bin-exch,1=long,2=mix)
64           swapping threshold
0            L1 in (0=transposed,1=no-transposed) form
0            U  in (0=transposed,1=no-transposed) form
1            Equilibration (0=no,1=yes)
8            memory alignment in double (> 0)
";

    #[test]
    fn a_full_hpl_dat_is_read() {
        let d = parse(HPL_DAT, "HPL.dat").unwrap();
        assert_eq!(d.ns, vec![1000, 2000]);
        assert_eq!(d.nbs, vec![128, 256]);
        assert_eq!(d.pmap, Pmap::Col);
        assert_eq!(d.grids, vec![(1, 2), (2, 1)]);
        assert_eq!(d.threshold, 16.0);
        assert_eq!(d.bcasts, vec![Algorithm::Ring, Algorithm::Binomial]);
        assert_eq!(d.lookaheads, vec![false]);
    }

    #[test]
    fn a_short_file_uses_the_defaults_and_errors_name_the_line() {
        let short: String = HPL_DAT.lines().take(13).map(|l| format!("{l}\n")).collect();
        let d = parse(&short, "x.dat").unwrap();
        assert_eq!((d.bcasts.clone(), d.lookaheads.clone()), (vec![Algorithm::Ring], vec![true]));
        let bad = HPL_DAT.replace("1000 2000    Ns", "1000 zero    Ns");
        assert_eq!(parse(&bad, "x.dat").unwrap_err(), "x.dat: line 6 (Ns): '1000 zero    Ns' (allowed: orders of at least 2)");
        let bad = HPL_DAT.replace("1            PMAP", "7            PMAP");
        assert!(parse(&bad, "x.dat").unwrap_err().starts_with("x.dat: line 9 (PMAP process mapping)"));
    }
}
