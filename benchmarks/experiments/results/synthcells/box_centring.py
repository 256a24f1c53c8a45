# python box_centring.py data/synthcells 32 {grid|peak} [sigma]: how close the prior top-32 boxes sit to the marker cells, on the grid or moved to the contrast peak (ContrastPeakRefiner rule)
import json, cv2, numpy as np, sys
root = sys.argv[1]; N = int(sys.argv[2]); box = 72; mode = sys.argv[3]; sig = float(sys.argv[4]) if len(sys.argv) > 4 else 0.15
inst = json.load(open(f'{root}/train_instances.json'))
keys = sorted(inst)[:60]
d_all = []; cov_all = []
def recentre(g, cx, cy, H, W):
    x0, y0 = int(np.clip(cx - box, 0, W - 2*box)), int(np.clip(cy - box, 0, H - 2*box))
    win = g[y0:y0+2*box, x0:x0+2*box]
    c = np.abs(win - np.median(win))
    c = cv2.GaussianBlur(c, (0, 0), sig * box)
    # only within the box's own reach (box/2 each way)
    yy, xx = np.mgrid[:c.shape[0], :c.shape[1]]
    lx, ly = cx - x0, cy - y0
    c[(np.abs(xx - lx) > box/2) | (np.abs(yy - ly) > box/2)] = -1
    if mode == 'peak':
        iy, ix = np.unravel_index(np.argmax(c), c.shape)
    return x0 + ix + .5, y0 + iy + .5
for k in keys:
    g = cv2.imread(f'{root}/{k}', cv2.IMREAD_GRAYSCALE).astype(np.float32)
    H, W = g.shape; s = 160 / max(H, W); gh, gw = int(round(H*s/4)), int(round(W*s/4))
    ch, cw = H / gh, W / gw
    std = np.zeros((gh, gw))
    for i in range(gh):
        for j in range(gw):
            std[i, j] = g[int(i*ch):int((i+1)*ch), int(j*cw):int((j+1)*cw)].std()
    order = np.argsort(-std.ravel()); chosen = []
    for o in order:
        i, j = divmod(o, gw)
        if all(max(abs(i-a), abs(j-b)) >= 2 for a, b in chosen): chosen.append((i, j))
        if len(chosen) == N: break
    cs = []
    for i, j in chosen:
        cx, cy = (j+.5)*cw, (i+.5)*ch
        if mode != 'grid': cx, cy = recentre(g, cx, cy, H, W)
        cs.append((cx, cy))
    cs = np.array(cs)
    boxes = np.array(inst[k]['boxes']); kinds = inst[k]['kinds']
    cen = np.stack([(boxes[:,0]+boxes[:,2])/2, (boxes[:,1]+boxes[:,3])/2], 1)
    m = np.array([kk != 'round' for kk in kinds])
    for c in cen[m]:
        d = np.abs(cs - c).max(1).min()
        d_all.append(d); cov_all.append(d < box/2 - 12)
d_all = np.array(d_all)
print(mode, sig, 'markers', len(d_all), 'coverage', round(np.mean(cov_all), 3), 'centred<=6px', round(np.mean(d_all <= 6), 3), '<=12px', round(np.mean(d_all <= 12), 3), 'median d of covered', np.median(d_all[d_all < 24]))
