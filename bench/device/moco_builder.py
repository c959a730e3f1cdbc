"""facebookresearch/moco's builder.MoCo on one GPU, for the PyTorch baselines of the device run
(torch_baseline.py's MoCo step, pretrain_baseline.py's training loop): two encoders with the MLP head,
the key encoder updated by momentum, a queue of normalised keys. One process, so no DDP: no shuffle BN
and no all_gather (the batch's own keys are enqueued)."""
import torch
import torch.nn.functional as F
import torchvision


class Moco(torch.nn.Module):
    def __init__(self, arch="resnet50", dim=128, k=65536, m=0.999, t=0.2):
        super().__init__()
        self.k, self.m, self.t = k, m, t
        self.encoder_q = getattr(torchvision.models, arch)(num_classes=dim)
        self.encoder_k = getattr(torchvision.models, arch)(num_classes=dim)
        mlp = self.encoder_q.fc.weight.shape[1]
        self.encoder_q.fc = torch.nn.Sequential(torch.nn.Linear(mlp, mlp), torch.nn.ReLU(), self.encoder_q.fc)
        self.encoder_k.fc = torch.nn.Sequential(torch.nn.Linear(mlp, mlp), torch.nn.ReLU(), self.encoder_k.fc)
        for pq, pk in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            pk.data.copy_(pq.data)
            pk.requires_grad = False
        self.register_buffer("queue", F.normalize(torch.randn(dim, k), dim=0))
        self.ptr = 0

    def forward(self, im_q, im_k):
        q = F.normalize(self.encoder_q(im_q), dim=1)
        with torch.no_grad():
            for pq, pk in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
                pk.data = pk.data * self.m + pq.data * (1.0 - self.m)
            k = F.normalize(self.encoder_k(im_k), dim=1)
        l_pos = torch.einsum("nc,nc->n", [q, k]).unsqueeze(-1)
        l_neg = torch.einsum("nc,ck->nk", [q, self.queue.clone().detach()])
        logits = torch.cat([l_pos, l_neg], dim=1) / self.t
        n = k.shape[0]
        self.queue[:, self.ptr:self.ptr + n] = k.T
        self.ptr = (self.ptr + n) % self.k
        return logits
